"""Latency histograms (mergeable across worker processes) and /proc samples of server processes.

`Histogram` keeps integer microseconds in log-linear buckets, HDR style: values under 128 us are
exact, above that every power of two is split into 64 buckets (under 1.6% error), so recording is
a few integer operations and a whole run fits in a short sparse JSON dict.
"""
import math
import os
import time

_SUB_BITS = 6
_EXACT = 1 << (_SUB_BITS + 1)          # 128: values below are their own bucket
_MAX_US = (1 << 36) - 1                # ~19 hours: anything longer is clamped
_N_BUCKETS = ((36 - _SUB_BITS) << _SUB_BITS) + _EXACT


def bucket_of(us):
    """The bucket index of a value in microseconds (int >= 0)."""
    if us < _EXACT:
        return us if us > 0 else 0
    if us > _MAX_US:
        us = _MAX_US
    shift = us.bit_length() - _SUB_BITS - 1
    return (shift << _SUB_BITS) + (us >> shift)


def bucket_value(index):
    """The middle of a bucket, in microseconds."""
    if index < _EXACT:
        return float(index)
    shift = (index >> _SUB_BITS) - 1
    low = (index - (shift << _SUB_BITS)) << shift
    return low + ((1 << shift) - 1) / 2.0


class Histogram:
    __slots__ = ("counts", "count", "total_us", "max_us")

    def __init__(self):
        self.counts = [0] * _N_BUCKETS
        self.count = 0
        self.total_us = 0
        self.max_us = 0

    def record(self, seconds):
        us = int(seconds * 1e6)
        if us < _EXACT:
            index = us if us > 0 else 0
        else:
            if us > _MAX_US:
                us = _MAX_US
            shift = us.bit_length() - _SUB_BITS - 1
            index = (shift << _SUB_BITS) + (us >> shift)
        self.counts[index] += 1
        self.count += 1
        self.total_us += us
        if us > self.max_us:
            self.max_us = us

    def merge(self, other):
        counts = self.counts
        for index, n in enumerate(other.counts):
            if n:
                counts[index] += n
        self.count += other.count
        self.total_us += other.total_us
        self.max_us = max(self.max_us, other.max_us)
        return self

    def percentile_us(self, fraction):
        """The value at or below which `fraction` of the samples lie (None when empty)."""
        if not self.count:
            return None
        rank = min(self.count, max(1, math.ceil(fraction * self.count)))
        seen = 0
        for index, n in enumerate(self.counts):
            if n:
                seen += n
                if seen >= rank:
                    return min(bucket_value(index), float(self.max_us))
        return float(self.max_us)

    def summary_ms(self):
        """{count, mean, p50, p90, p99, max} in milliseconds (3 decimals)."""
        if not self.count:
            return {"count": 0}
        out = {"count": self.count, "mean": round(self.total_us / self.count / 1000.0, 3)}
        for name, fraction in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99)):
            out[name] = round(self.percentile_us(fraction) / 1000.0, 3)
        out["max"] = round(self.max_us / 1000.0, 3)
        return out

    def to_json(self):
        return {"buckets": {str(i): n for i, n in enumerate(self.counts) if n},
                "count": self.count, "total_us": self.total_us, "max_us": self.max_us}

    @classmethod
    def from_json(cls, data):
        hist = cls()
        for index, n in data.get("buckets", {}).items():
            index = int(index)
            if not 0 <= index < _N_BUCKETS:
                raise ValueError("histogram bucket %d out of range" % index)
            hist.counts[index] += int(n)
        hist.count = int(data.get("count", 0))
        hist.total_us = int(data.get("total_us", 0))
        hist.max_us = int(data.get("max_us", 0))
        return hist


# ---- server processes, from /proc ------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def read_process(pid):
    """{pid, name, cpu_s (user+system), rss_kb, at} of a live process, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read().decode("utf-8", "replace")
        with open("/proc/%d/status" % pid, "rb") as f:
            status = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    # the command name is in parentheses and may itself hold spaces or parentheses
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    rss_kb = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
            break
    return {"pid": pid, "name": _process_label(pid, name), "cpu_s": (utime + stime) / _CLOCK_TICKS,
            "rss_kb": rss_kb, "at": time.monotonic()}


def _process_label(pid, name):
    """The comm name, plus a zpomelo/pinus server id from the command line when there is one."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return name
    for i, arg in enumerate(argv):
        if arg.startswith("id="):
            return "%s %s" % (name, arg[3:])
        if arg == "--id" and i + 1 < len(argv):
            return "%s %s" % (name, argv[i + 1])
    return name


def sample_processes(pids):
    return {pid: read_process(pid) for pid in pids}


def read_machine():
    """(busy, total) CPU seconds of the whole machine, all cores, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)      # idle + iowait
    total = sum(fields[:8])                                       # guest time is in user already
    return (total - idle) / _CLOCK_TICKS, total / _CLOCK_TICKS


def machine_report(before, after, cores=None):
    """{busy_percent, cores}: how busy the machine was (100% = every core) over the window."""
    if not before or not after or after[1] <= before[1]:
        return {}
    return {"busy_percent": round(100.0 * (after[0] - before[0]) / (after[1] - before[1]), 1),
            "cores": cores or os.cpu_count()}


def process_report(before, after, rss_before=None):
    """Per-pid CPU % over the window and RSS at its end, from two `sample_processes` results."""
    report = {}
    for pid, end in after.items():
        start = before.get(pid)
        if end is None or start is None:
            report[str(pid)] = {"error": "process %d is gone" % pid}
            continue
        elapsed = max(1e-9, end["at"] - start["at"])
        entry = {"name": end["name"], "cpu_s": round(end["cpu_s"] - start["cpu_s"], 3),
                 "cpu_percent": round(100.0 * (end["cpu_s"] - start["cpu_s"]) / elapsed, 1),
                 "rss_kb": end["rss_kb"]}
        if rss_before is not None and rss_before.get(pid):
            entry["rss_before_kb"] = rss_before[pid]["rss_kb"]
        report[str(pid)] = entry
    return report
