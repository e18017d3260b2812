"""What /proc says about a process: alive or not, its command line, RSS and CPU time.

Linux only, no psutil. A server reads its own numbers here (``self_report``) and sends them on
its control channel, so `zpomelo list` shows what each server's own host says; the master reads
/proc only for itself and the command line for the master's pid.
"""
import os
import time

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    with open("/proc/%d/stat" % pid, "rb") as f:
        data = f.read()
    return data[data.rindex(b")") + 2:].split()


def is_alive(pid):
    """True while the process exists and is not a zombie."""
    if not pid or pid <= 0:
        return False
    try:
        return _stat_fields(pid)[0] not in (b"Z", b"X")
    except (OSError, ValueError, IndexError):
        return False


def cmdline(pid):
    """The argument list of a process, or [] when it is gone."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def runs_server(pid, server_id):
    """True when pid is alive and is the server process of server_id (guards against pid reuse)."""
    if not is_alive(pid):
        return False
    args = cmdline(pid)
    return any(a == "--id" and b == server_id for a, b in zip(args, args[1:]))


def rss_bytes(pid):
    try:
        with open("/proc/%d/statm" % pid, "rb") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


def cpu_seconds(pid):
    """User + system CPU time of the process, in seconds."""
    try:
        fields = _stat_fields(pid)
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return None


def self_report():
    """This process's pid, RSS (bytes) and CPU time (seconds), as the master's `list` wants."""
    pid = os.getpid()
    return {"pid": pid, "rss": rss_bytes(pid), "cpuSeconds": cpu_seconds(pid)}


class CpuSampler:
    """CPU % of processes between two samples of their CPU time (the first sample covers the
    whole life). Keyed by anything (a server id with its pid): the seconds may come from
    another host."""

    def __init__(self):
        self._last = {}     # key -> (monotonic time, cpu seconds)

    def percent(self, key, used, started_at=None):
        now = time.monotonic()
        if used is None:
            self._last.pop(key, None)
            return None
        before = self._last.get(key)
        self._last[key] = (now, used)
        if before is None:
            if started_at is None:
                return None
            span, delta = time.time() - started_at, used
        else:
            span, delta = now - before[0], used - before[1]
        if span <= 0:
            return 0.0
        return round(100.0 * delta / span, 1)

    def forget(self, key):
        self._last.pop(key, None)
