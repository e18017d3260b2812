"""Requests per second and latency through one frontend whose handler is local (no backend).

    /work/venv/bin/python tests/bench/bench_frontend.py [--runs 3] [--duration 10] [--clients 50,200] \
        [--transports ws,tcp] [--workers 1] [--out tests/bench/results/frontend_local.json]

The server (tests/bench/bench_local_app, connector-server-1 on client port 3020) is one process,
the load (`zpomelo bench --mode echo --route connector.entryHandler.echo`) another; the report
gives per-case medians over the runs.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from bench_targets import ROOT, ZpomeloApp  # noqa: E402

from zpomelo.bench import BenchOptions, run_bench  # noqa: E402

APP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_local_app")
ROUTE = "connector.entryHandler.echo"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--clients", default="50,200")
    parser.add_argument("--transports", default="ws,tcp")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "bench", "results", "frontend_local.json"))
    args = parser.parse_args()
    cases = [(t, int(c)) for t in args.transports.split(",") for c in args.clients.split(",")]

    runs = {}
    with ZpomeloApp(app_dir=APP_DIR, server_ids=("connector-server-1",), wait_route=None) as server:
        for round_no in range(args.runs):
            for transport, clients in cases:
                result = run_bench(BenchOptions(mode="echo", port=server.ports, route=ROUTE, transport=transport,
                                                clients=clients, workers=args.workers,
                                                duration=args.duration, warmup=args.warmup,
                                                pids=tuple(server.pids)))
                key = "%s-%d" % (transport, clients)
                runs.setdefault(key, []).append(result)
                print("round %d %-7s %9.1f req/s  p50 %s ms  p99 %s ms  errors %d" % (
                    round_no + 1, key, result["throughput"], result["latency_ms"].get("p50"),
                    result["latency_ms"].get("p99"), result["errors"]), file=sys.stderr, flush=True)

    summary = {}
    for key, results in runs.items():
        summary[key] = {
            "requests_per_s": statistics.median(r["throughput"] for r in results),
            "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in results),
            "p99_ms": statistics.median(r["latency_ms"]["p99"] for r in results),
            "server_cpu_percent": statistics.median(r.get("server_cpu_percent", 0) for r in results),
            "loadgen_cpu_percent": statistics.median(r["loadgen_cpu_percent"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "all_runs": [r["throughput"] for r in results]}
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    report = {"meta": {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "commit": commit,
                       "command": " ".join([os.path.basename(sys.executable)] + sys.argv)},
              "summary": summary, "runs": runs}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print("| case | req/s | p50 ms | p99 ms | server CPU % | load CPU % |")
    print("|---|---|---|---|---|---|")
    for key, row in summary.items():
        print("| %s | %s | %s | %s | %s | %s |" % (key, row["requests_per_s"], row["p50_ms"], row["p99_ms"],
                                                  row["server_cpu_percent"], row["loadgen_cpu_percent"]))


if __name__ == "__main__":
    main()
