"""Transactions per second and latency (issue 11): a read-modify-write of one document and a
two-document transfer, each in a transaction, against the same read-modify-write on process memory
(the plain handler), in the same run, on each engine. 50 clients, one request in flight each,
client -> connector -> game backend -> client.

    python tests/bench/bench_db.py [--runs 3] [--duration 8] [--clients 50] [--engines sqlite,redis]
        [--synchronous FULL] [--paced 0.6] [--out tests/bench/results/db.json]

Each round runs the three cases one after the other; a case's cost against the plain request is
the median of the rounds' ratios (with their range), not a ratio of medians.

Then, in the same round, the three again at one common paced rate (`zpomelo bench --rate`):
`--paced` (0.6) times the slowest case's closed-loop requests/s of that round. In the closed
loop each route runs at its own speed, and the faster plain route is measured with more requests
per wake-up of each server, which alone lowers its CPU per request (on the 2-core VM of
README's numbers a bare epoll echo process spent 12 us per wake-up at 10,000 wake-ups/s and
30 us at 1,000/s). At one
rate both routes get the same arrivals, so `paced_cpu_vs_plain` is the server CPU a transaction
adds at equal load. `--paced 0` skips it.

Servers: tests/bench/bench_db_app (connector on a free client port, game backend), real processes;
Redis: a redis-server started here with appendonly yes, appendfsync always (stopped by pid).
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from bench_targets import ROOT, ZpomeloApp  # noqa: E402

from zpomelo.bench import BenchOptions, run_bench  # noqa: E402
from zpomelo.testing import wait_until  # noqa: E402

APP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_db_app")
ROUTES = {"plain": "game.gameHandler.plain", "rmw": "game.gameHandler.rmw",
          "transfer": "game.gameHandler.transfer"}


def start_redis(directory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port),
                             "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
                             "--appendfsync", "always", "--dir", directory],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False
    wait_until(up, 10, message="redis-server")
    return proc, port


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--engines", default="sqlite,redis")
    parser.add_argument("--synchronous", default="FULL")
    parser.add_argument("--paced", type=float, default=0.6,
                        help="pace the cases at this fraction of the slowest one's closed-loop rate (0: off)")
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "bench", "results", "db.json"))
    args = parser.parse_args()
    runs = {}
    for engine in args.engines.split(","):
        tmp = tempfile.mkdtemp(prefix="zpomelo-bench-db-")
        redis = None
        if engine == "sqlite":
            options = {"engine": "sqlite", "path": os.path.join(tmp, "bench.db"),
                       "synchronous": args.synchronous}
        else:
            redis, port = start_redis(tmp)
            options = {"engine": "redis", "url": "redis://127.0.0.1:%d/0" % port}
        try:
            with ZpomeloApp(app_dir=APP_DIR, server_ids=("game-server-1", "connector-server-1"),
                            wait_route=None, extra_env={"ZPOMELO_BENCH_DB": json.dumps(options)}) as server:
                for round_no in range(args.runs):
                    closed = []
                    for case, route in ROUTES.items():
                        result = _measure(server, route, args, None)
                        runs.setdefault("%s/%s" % (engine, case), []).append(result)
                        _print(round_no, "%s/%s" % (engine, case), result)
                        closed.append(result["throughput"])
                    slowest = min(closed)
                    if args.paced and slowest:
                        rate = round(args.paced * slowest, -2) or 100.0
                        for case, route in ROUTES.items():
                            result = _measure(server, route, args, rate)
                            runs.setdefault("%s/%s/paced" % (engine, case), []).append(result)
                            _print(round_no, "%s/%s at %d/s" % (engine, case, rate), result)
        finally:
            if redis is not None:
                redis.terminate()
                redis.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)
    summary = {}
    for key, results in runs.items():
        summary[key] = {
            "requests_per_s": statistics.median(r["throughput"] for r in results),
            "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in results),
            "p99_ms": statistics.median(r["latency_ms"]["p99"] for r in results),
            "errors": sum(r["errors"] for r in results),
            # CPU of the connector and the game server per request: unlike req/s, hardly moved
            # by what else runs on the machine
            "server_cpu_us_per_op": statistics.median(r.get("server_cpu_us_per_op") or 0 for r in results),
            "game_cpu_us_per_op": statistics.median(r.get("game_cpu_us_per_op") or 0 for r in results),
        }
        if key.endswith("/paced"):
            summary[key].update(rate=[r["rate"] for r in results],
                                rate_kept=all(r["rate_kept"] for r in results))
    for engine in args.engines.split(","):
        for case in ("rmw", "transfer"):
            row = summary.get("%s/%s" % (engine, case))
            if row is not None:
                row.update(_ratios_to_plain(runs["%s/plain" % engine], runs["%s/%s" % (engine, case)]))
            paced = summary.get("%s/%s/paced" % (engine, case))
            if paced is not None:
                ratios = _ratios_to_plain(runs["%s/plain/paced" % engine], runs["%s/%s/paced" % (engine, case)])
                paced.update(paced_cpu_vs_plain=ratios.get("cpu_vs_plain"),
                             paced_cpu_vs_plain_range=ratios.get("cpu_vs_plain_range"),
                             paced_game_cpu_vs_plain=_game_ratio(runs["%s/plain/paced" % engine],
                                                                 runs["%s/%s/paced" % (engine, case)]))
    report = {"date": time.strftime("%Y-%m-%d"), "clients": args.clients, "duration": args.duration,
              "runs": args.runs, "synchronous": args.synchronous, "paced": args.paced, "summary": summary}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(summary, indent=1))


def _measure(server, route, args, rate):
    """One closed-loop (rate None) or paced run of route; the game server's CPU per request added."""
    result = run_bench(BenchOptions(
        mode="echo", port=server.ports, route=route, body={}, transport="ws", clients=args.clients,
        duration=args.duration, warmup=args.warmup, pids=tuple(server.pids), rate=rate))
    game = result.get("server", {}).get(str(server.procs["game-server-1"].pid), {})
    if "cpu_s" in game and result.get("requests"):
        result["game_cpu_us_per_op"] = round(1e6 * game["cpu_s"] / result["requests"], 1)
    return result


def _print(round_no, key, result):
    kept = "" if result.get("rate_kept", True) else "  RATE NOT KEPT (%d late)" % result["late"]
    print("round %d %-24s %9.1f req/s  p50 %s ms  p99 %s ms  server CPU %s us/op (game %s)  errors %d%s" % (
        round_no + 1, key, result["throughput"], result["latency_ms"].get("p50"),
        result["latency_ms"].get("p99"), result.get("server_cpu_us_per_op"),
        result.get("game_cpu_us_per_op"), result["errors"], kept), file=sys.stderr, flush=True)


def _game_ratio(plain_rounds, case_rounds):
    ratios = [case["game_cpu_us_per_op"] / plain["game_cpu_us_per_op"]
              for plain, case in zip(plain_rounds, case_rounds)
              if plain.get("game_cpu_us_per_op") and case.get("game_cpu_us_per_op")]
    return round(statistics.median(ratios), 2) if ratios else None


def _ratios_to_plain(plain_rounds, case_rounds):
    """The transaction's cost against the plain request, per round (the two ran a few seconds
    apart, so a machine that speeds up or slows down between rounds moves both alike): the median
    of the rounds' ratios and their range. Time: plain req/s over the case's req/s; CPU: the
    case's server CPU per request over the plain one's."""
    time_ratios, cpu_ratios = [], []
    for plain, case in zip(plain_rounds, case_rounds):
        if case["throughput"]:
            time_ratios.append(plain["throughput"] / case["throughput"])
        if plain.get("server_cpu_us_per_op") and case.get("server_cpu_us_per_op"):
            cpu_ratios.append(case["server_cpu_us_per_op"] / plain["server_cpu_us_per_op"])
    out = {}
    for name, ratios in (("cost_vs_plain", time_ratios), ("cpu_vs_plain", cpu_ratios)):
        if ratios:
            out[name] = round(statistics.median(ratios), 2)
            out[name + "_range"] = [round(min(ratios), 2), round(max(ratios), 2)]
    return out


if __name__ == "__main__":
    main()
