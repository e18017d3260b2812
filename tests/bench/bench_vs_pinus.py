"""zpomelo's examples/bench against the pinus reference app, the same load in the same run.

    PINUS_APP=/path/to/pinus-app python tests/bench/bench_vs_pinus.py \
        [--runs 5] [--duration 5] [--scenarios echo50,echo50x4,echo200,echo200x4,push200,connect2000] \
        [--targets zpomelo,pinus] [--transport ws] [--workers 1] \
        [--out tests/bench/results/vs_pinus.json] [--markdown tests/bench/results/vs_pinus.md]

PINUS_APP is a copy of the pinus reference app with `npm install` done in it. Each round starts
every target in turn (never two at once; the order alternates between rounds), runs every
scenario on it once with `zpomelo bench`'s engine and stops it. The report gives, per scenario,
medians over the rounds of each target's numbers and the median of the per-round zpomelo/pinus
ratios (both measured minutes apart on the same machine), and prints the markdown table. With
the defaults (5 rounds) it takes about 12 minutes.
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
    "echo50": dict(mode="echo", clients=50, inflight=1),
    "echo50x4": dict(mode="echo", clients=50, inflight=4),
    "echo200": dict(mode="echo", clients=200, inflight=1),
    "echo200x4": dict(mode="echo", clients=200, inflight=4),
    "push200": dict(mode="chat", clients=200, senders=50),
    "connect2000": dict(mode="connect", clients=2000, inflight=50),
}
DESCRIPTIONS = {
    "echo50": "echo, 50 clients, 1 in flight", "echo50x4": "echo, 50 clients, 4 in flight",
    "echo200": "echo, 200 clients, 1 in flight", "echo200x4": "echo, 200 clients, 4 in flight",
    "push200": "push fan-out: 50 senders to a 200-member channel (op = delivered push)",
    "connect2000": "connect + handshake, 2,000 clients, 50 at once (op = connection)",
}
TARGETS = {
    "zpomelo": lambda: ZpomeloApp(),
    "zpomelo-2fe": lambda: ZpomeloApp(env="twofrontends", server_ids=(
        "chat-server-1", "connector-server-1", "connector-server-2")),
    "pinus": lambda: PinusApp(),
}
KEYS = ("throughput", "server_cpu_percent", "server_cpu_us_per_op", "server_rss_kb",
        "server_rss_kb_per_connection", "loadgen_cpu_percent", "loadgen_cpu_us_per_op", "errors")


def run_scenario(target, name, args):
    spec = dict(SCENARIOS[name])
    options = BenchOptions(port=list(target.ports), transport=args.transport, workers=args.workers,
                           duration=args.duration, warmup=args.warmup, pids=tuple(target.pids), **spec)
    with open("/proc/loadavg") as f:
        load_before = [float(x) for x in f.read().split()[:3]]
    result = run_bench(options)
    result["loadavg_before"] = load_before
    return result


def median(values):
    values = [v for v in values if isinstance(v, (int, float))]
    return round(statistics.median(values), 3) if values else None


def nested(run, *path):
    for key in path:
        run = run.get(key) if isinstance(run, dict) else None
    return run


def summarize(results, targets):
    """Per scenario and target: medians over the rounds; per other target: the median of the
    per-round ratios to pinus (round i of both)."""
    summary = {}
    for target, scenarios in results.items():
        for name, runs in scenarios.items():
            row = {key: median([r.get(key) for r in runs]) for key in KEYS}
            lat = "handshake_latency_ms" if name.startswith("connect") else \
                ("push_latency_ms" if name.startswith("push") else "latency_ms")
            row["latency_p50_ms"] = median([nested(r, lat, "p50") for r in runs])
            row["latency_p99_ms"] = median([nested(r, lat, "p99") for r in runs])
            row["machine_busy_percent"] = median([nested(r, "machine", "busy_percent") for r in runs])
            row["loadgen_worker_cpu_percent"] = median(
                [max(w["cpu_percent"] for w in r["loadgen_workers"]) for r in runs])
            row["saturated"] = [nested(r, "saturated") for r in runs]
            row["runs"] = len(runs)
            row["throughput_all_runs"] = [r.get("throughput") for r in runs]
            summary.setdefault(name, {})[target] = row
    for name, row in summary.items():
        pinus_runs = results.get("pinus", {}).get(name)
        for target in row:
            if target == "pinus" or not pinus_runs:
                continue
            ours = results[target][name]
            pairs = list(zip(ours, pinus_runs))
            row[target]["throughput_ratio"] = median(
                [a["throughput"] / b["throughput"] for a, b in pairs if a.get("throughput") and b.get("throughput")])
            row[target]["cpu_per_op_ratio"] = median(
                [a["server_cpu_us_per_op"] / b["server_cpu_us_per_op"] for a, b in pairs
                 if a.get("server_cpu_us_per_op") and b.get("server_cpu_us_per_op")])
            row[target]["rss_ratio"] = median(
                [a["server_rss_kb"] / b["server_rss_kb"] for a, b in pairs
                 if a.get("server_rss_kb") and b.get("server_rss_kb")])
    return summary


def saturation_text(verdicts):
    """The process most often nearest 100% of a core over the rounds, its median %, and how
    often every core of the machine was busy."""
    verdicts = [v for v in verdicts if v]
    if not verdicts:
        return ""
    names = [v["process"] for v in verdicts]
    top = max(set(names), key=names.count)
    percent = median([v["cpu_percent"] for v in verdicts if v["process"] == top])
    full = sum(1 for v in verdicts if v.get("machine_full"))
    text = "%s %s%%" % (top.replace("python ", "").replace("node ", ""), round(percent))
    if full:
        text += " (machine full %d/%d)" % (full, len(verdicts))
    return text


def _fmt(value, digits=0):
    if value is None:
        return ""
    return ("%." + str(digits) + "f") % value


def markdown(summary, meta):
    lines = ["| scenario | target | ops/s | ratio | server CPU µs/op | CPU/op ratio | server CPU % "
             "| p50 / p99 ms | RSS MB | load tool CPU % (µs/op) | nearest 100% of a core |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in summary:
        for target, r in summary[name].items():
            rss = _fmt((r.get("server_rss_kb") or 0) / 1024.0, 0)
            if r.get("server_rss_kb_per_connection") is not None:
                rss += " (%s KB/conn)" % _fmt(r["server_rss_kb_per_connection"], 1)
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s (%s) | %s |" % (
                name, target, _fmt(r.get("throughput")), _fmt(r.get("throughput_ratio"), 2),
                _fmt(r.get("server_cpu_us_per_op"), 1), _fmt(r.get("cpu_per_op_ratio"), 2),
                _fmt(r.get("server_cpu_percent")), _fmt(r.get("latency_p50_ms"), 1),
                _fmt(r.get("latency_p99_ms"), 1), rss, _fmt(r.get("loadgen_cpu_percent")),
                _fmt(r.get("loadgen_cpu_us_per_op"), 1), saturation_text(r["saturated"])))
    legend = ["", "Scenarios: " + "; ".join("%s = %s" % (n, DESCRIPTIONS[n]) for n in summary) + ".",
              "Medians of %(runs)d rounds of %(duration_s)s s (after %(warmup_s)s s warm-up), %(transport)s, "
              "targets started one at a time, order alternating; ratios are zpomelo/pinus medians "
              "of the per-round ratios. Server CPU is all the target's processes (pinus: master, "
              "connector, chat; zpomelo: connector, chat). Machine: %(cpus)d cores, %(machine)s; "
              "commit %(commit)s; `%(command)s`." % meta]
    return "\n".join(lines + legend)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--transport", default="ws", choices=["ws", "tcp"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--targets", default="zpomelo,pinus")
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "bench", "results", "vs_pinus.json"))
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
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
    began = time.time()
    for round_no in range(args.runs):
        order = targets if round_no % 2 == 0 else list(reversed(targets))
        for target_name in order:
            with TARGETS[target_name]() as target:
                for name in scenarios:
                    result = run_scenario(target, name, args)
                    results.setdefault(target_name, {}).setdefault(name, []).append(result)
                    print("round %d %-8s %-12s ops/s %-9s server us/op %-7s load %%%s errors %s "
                          "machine %s%%" % (round_no + 1, target_name, name, result.get("throughput"),
                                            result.get("server_cpu_us_per_op"),
                                            result.get("loadgen_cpu_percent"), result["errors"],
                                            nested(result, "machine", "busy_percent")),
                          file=sys.stderr, flush=True)

    summary = summarize(results, targets)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    meta = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit,
            "cpus": os.cpu_count(), "machine": _cpu_model(), "python": platform.python_version(),
            "command": " ".join(["python"] + [os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
            "transport": args.transport, "duration_s": args.duration, "warmup_s": args.warmup,
            "workers": args.workers, "runs": args.runs, "wall_s": round(time.time() - began)}
    report = {"meta": meta, "summary": summary, "runs": results}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    table = markdown(summary, meta)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    print(table)
    print("\nwritten to %s (%d s)" % (args.out, meta["wall_s"]), file=sys.stderr)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


if __name__ == "__main__":
    main()
