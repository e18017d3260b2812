"""Rate limits under a flood: do the other clients of a frontend keep their latency?

    python tests/bench/bench_flood.py [--clients 20] [--rate 20] [--seconds 8] \
        [--out tests/bench/results/flood.json]

Real processes: tests/apps/limits (connector-1 with 50 requests/s per connection, kicked after
100 refusals in 10 s; area-1 the backend) started by `zpomelo start` in a temporary copy. One run,
two phases of the same length: `--clients` steady clients at `--rate` requests/s each (well under
their limit) measure their latency alone, then again while a flooder process sends 500 requests/s
(10x its limit), is refused, kicked, reconnects and floods again for the whole phase. The report
gives p50/p99/max per phase, the steady clients' errors, the frontend process's CPU share, and
the flooder's 200s, 429s, answers lost with its kicked connections ("other") and kicks.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import gevent

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from zpomelo.client import Client  # noqa: E402
from zpomelo.client.errors import ConnectionClosed  # noqa: E402
from zpomelo.testing.process_cluster import ProcessCluster, copy_project  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP_DIR = os.path.join(ROOT, "tests", "apps", "limits")
WORK = "area.areaHandler.work"
FLOOD_RATE = 500          # requests/s: 10x rateLimitRequests in tests/apps/limits


def flood(port, seconds):
    """The flooder process: flood, get kicked, reconnect, until `seconds` have passed."""
    counts = {"ok": 0, "limited": 0, "other": 0, "kicks": 0, "connections": 0}
    deadline = time.monotonic() + seconds

    def answered(error, body):
        if error is not None:
            counts["other"] += 1
        elif body.get("code") == 200:
            counts["ok"] += 1
        elif body.get("code") == 429:
            counts["limited"] += 1
        else:
            counts["other"] += 1

    while time.monotonic() < deadline:
        client = Client.connect("127.0.0.1", port, "tcp")
        counts["connections"] += 1
        client.on_kick(lambda reason: counts.__setitem__("kicks", counts["kicks"] + 1))
        started = time.monotonic()
        sent = 0
        while not client.closed.is_set() and time.monotonic() < deadline:
            due = int((time.monotonic() - started) * FLOOD_RATE)
            try:
                while sent < due and not client.closed.is_set():
                    client.request_async(WORK, {"n": sent}, answered)
                    sent += 1
            except ConnectionClosed:      # kicked while we were writing
                break
            gevent.sleep(0.01)
        client.closed.wait(2)
        client.close()
    print(json.dumps(counts))


def steady(port, rate, seconds, latencies, errors):
    client = Client.connect("127.0.0.1", port, "tcp")
    interval = 1.0 / rate
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                code = client.request(WORK, {"n": 1}, timeout=10)["code"]
            except Exception as exc:
                errors.append(repr(exc))
            else:
                latencies.append(time.perf_counter() - started)
                if code != 200:
                    errors.append(code)
            gevent.sleep(max(0.0, interval - (time.perf_counter() - started)))
    finally:
        client.close()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100.0 * len(ordered)))] if ordered else None


def cpu_seconds(pid):
    """utime + stime of a process, from /proc (Linux)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase(port, clients, rate, seconds, frontend_pid):
    latencies, errors = [], []
    cpu_before, wall_before = cpu_seconds(frontend_pid), time.monotonic()
    gevent.joinall([gevent.spawn(steady, port, rate, seconds, latencies, errors) for _ in range(clients)])
    cpu = (cpu_seconds(frontend_pid) - cpu_before) / (time.monotonic() - wall_before)
    ms = [v * 1000 for v in latencies]
    return {"requests": len(ms), "errors": len(errors), "p50_ms": round(percentile(ms, 50), 3),
            "p99_ms": round(percentile(ms, 99), 3), "max_ms": round(max(ms), 3),
            "frontend_cpu_percent": round(100 * cpu, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "bench", "results", "flood.json"))
    parser.add_argument("--flooder", nargs=2, metavar=("PORT", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flooder:
        flood(int(args.flooder[0]), float(args.flooder[1]))
        return
    with tempfile.TemporaryDirectory(prefix="zpomelo-flood-") as tmp:
        project = copy_project(APP_DIR, os.path.join(tmp, "limits"), "test")
        with ProcessCluster(project, "test") as cluster:
            row = cluster.servers()["connector-1"]
            port, pid = row["clientPort"], row["pid"]
            quiet = phase(port, args.clients, args.rate, args.seconds, pid)
            flooder = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--flooder",
                                        str(port), str(args.seconds + 1)],
                                       stdout=subprocess.PIPE, text=True)
            try:
                flooded = phase(port, args.clients, args.rate, args.seconds, pid)
                out, _ = flooder.communicate(timeout=args.seconds + 30)
            finally:
                if flooder.poll() is None:
                    flooder.kill()
            flood_counts = json.loads(out.strip().splitlines()[-1])
    report = {"load_average_at_end": os.getloadavg()[0], "clients": args.clients, "rate_per_client": args.rate, "seconds": args.seconds,
              "flood_rate": FLOOD_RATE, "without_flood": quiet, "with_flood": flooded,
              "flooder": flood_counts}
    print(json.dumps(report, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
