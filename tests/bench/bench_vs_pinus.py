"""zpomelo's examples/bench against the pinus reference app (directory in $PINUS_APP), same load, same run.

    /work/venv/bin/python tests/bench/bench_vs_pinus.py [--runs 3] [--duration 10] \
        [--scenarios echo50,echo200,chat200,connect2000] [--targets zpomelo,zpomelo-2fe,pinus] \
        [--transport ws] [--workers 1] [--out tests/bench/results/vs_pinus.json]

Every round starts each target in turn (never two at once), runs every scenario of that target
once with `zpomelo bench`'s engine, and stops it; the report gives per-scenario medians over the
rounds and the zpomelo/pinus ratios. Targets: zpomelo (connector-server-1 + chat-server-1, as
pinus), zpomelo-2fe (two connectors + chat, for the push scenario), pinus.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from bench_targets import ROOT, PinusApp, ZpomeloApp  # noqa: E402

from zpomelo.bench import BenchOptions, run_bench  # noqa: E402

SCENARIOS = {
    "echo50": dict(mode="echo", clients=50),
    "echo200": dict(mode="echo", clients=200),
    "chat200": dict(mode="chat", clients=200, senders=10),
    "connect2000": dict(mode="connect", clients=2000, inflight=50),
}
TARGETS = {
    "zpomelo": (lambda: ZpomeloApp(), ["echo50", "echo200", "chat200", "connect2000"]),
    "zpomelo-2fe": (lambda: ZpomeloApp(env="twofrontends", ports=(3010, 3011),
                                       server_ids=("chat-server-1", "connector-server-1",
                                                   "connector-server-2")), ["chat200"]),
    "pinus": (lambda: PinusApp(), ["echo50", "echo200", "chat200", "connect2000"]),
}
KEYS = ("throughput", "requests_per_s", "pushes_per_s", "connects_per_s", "server_cpu_percent",
        "server_cpu_us_per_op", "server_rss_kb_per_connection", "loadgen_cpu_percent", "errors")


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def run_scenario(target, name, args):
    spec = dict(SCENARIOS[name])
    options = BenchOptions(port=list(target.ports), transport=args.transport, workers=args.workers,
                           duration=args.duration, warmup=args.warmup, pids=tuple(target.pids), **spec)
    load_before = loadavg()
    result = run_bench(options)
    result["loadavg_before"] = load_before
    return result


def median_of(runs, key, sub=None):
    values = []
    for run in runs:
        value = run.get(key)
        if sub is not None and isinstance(value, dict):
            value = value.get(sub)
        if isinstance(value, (int, float)):
            values.append(value)
    return round(statistics.median(values), 3) if values else None


def summarize(results):
    summary = {}
    for target, scenarios in results.items():
        for name, runs in scenarios.items():
            row = {key: median_of(runs, key) for key in KEYS if median_of(runs, key) is not None}
            lat_key = "handshake_latency_ms" if name.startswith("connect") else "latency_ms"
            for p in ("p50", "p99"):
                row["latency_" + p + "_ms"] = median_of(runs, lat_key, p)
            if name.startswith("chat"):
                row["push_latency_p50_ms"] = median_of(runs, "push_latency_ms", "p50")
                row["push_latency_p99_ms"] = median_of(runs, "push_latency_ms", "p99")
            row["runs"] = len(runs)
            row["throughput_all_runs"] = [r.get("throughput") for r in runs]
            summary.setdefault(name, {})[target] = row
    for name, row in summary.items():
        pinus = row.get("pinus", {}).get("throughput")
        for target in row:
            if target != "pinus" and pinus and row[target].get("throughput") is not None:
                row[target]["ratio_vs_pinus"] = round(row[target]["throughput"] / pinus, 3)
    return summary


def markdown(summary):
    lines = ["| scenario | target | throughput/s | p50 ms | p99 ms | server CPU % | server CPU us/op "
             "| server KB/conn | load CPU % | ratio vs pinus |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in summary.items():
        for target, r in row.items():
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                name, target, r.get("throughput"), r.get("latency_p50_ms"), r.get("latency_p99_ms"),
                r.get("server_cpu_percent", ""), r.get("server_cpu_us_per_op", ""),
                r.get("server_rss_kb_per_connection", ""), r.get("loadgen_cpu_percent"),
                r.get("ratio_vs_pinus", "")))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--transport", default="ws", choices=["ws", "tcp"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--targets", default="zpomelo,zpomelo-2fe,pinus")
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "bench", "results", "vs_pinus.json"))
    args = parser.parse_args()
    scenarios = args.scenarios.split(",")
    targets = args.targets.split(",")
    for name in scenarios:
        if name not in SCENARIOS:
            parser.error("unknown scenario %r (known: %s)" % (name, ", ".join(SCENARIOS)))
    for name in targets:
        if name not in TARGETS:
            parser.error("unknown target %r (known: %s)" % (name, ", ".join(TARGETS)))

    results = {}
    for round_no in range(args.runs):
        for target_name in targets:
            make, supported = TARGETS[target_name]
            todo = [s for s in scenarios if s in supported]
            if not todo:
                continue
            with make() as target:
                for name in todo:
                    result = run_scenario(target, name, args)
                    results.setdefault(target_name, {}).setdefault(name, []).append(result)
                    print("round %d %-12s %-12s throughput %-10s errors %s  load %s" % (
                        round_no + 1, target_name, name, result.get("throughput"), result["errors"],
                        result["loadavg_before"]), file=sys.stderr, flush=True)

    summary = summarize(results)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    report = {"meta": {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "commit": commit,
                       "cpus": os.cpu_count(), "python": platform.python_version(),
                       "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
                       "transport": args.transport, "duration_s": args.duration,
                       "workers": args.workers, "runs": args.runs},
              "summary": summary, "runs": results}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(markdown(summary))
    print("\nwritten to %s" % args.out, file=sys.stderr)


if __name__ == "__main__":
    main()
