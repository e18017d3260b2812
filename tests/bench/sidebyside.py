"""Side-by-side benchmark rounds shared by bench_vs_pinus.py and bench_websocket.py.

`run_rounds(targets, scenarios, args)` starts each target in turn (never two at once; the order
alternates between rounds), warms it up with 3 s of unrecorded echo, runs every scenario on it once with `zpomelo bench`'s engine and
stops it; `report(...)` takes medians over the rounds and the median of the per-round ratios to
a baseline target, writes the JSON and returns the markdown table.
"""
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

from bench_targets import ROOT

from zpomelo.bench import BenchOptions, run_bench

KEYS = ("throughput", "server_cpu_percent", "server_cpu_us_per_op", "server_rss_kb",
        "server_rss_kb_per_connection", "loadgen_cpu_percent", "loadgen_cpu_us_per_op", "errors", "late")


def median(values):
    values = [v for v in values if isinstance(v, (int, float))]
    return round(statistics.median(values), 3) if values else None


def nested(run, *path):
    for key in path:
        run = run.get(key) if isinstance(run, dict) else None
    return run


def summarize(results, baseline):
    """Per scenario and target: medians over the rounds; per other target: the median of the
    per-round ratios to the baseline target (round i of both)."""
    summary = {}
    for target, scenarios in results.items():
        for name, all_runs in scenarios.items():
            # a round that served nothing (a target that stopped delivering) is counted apart,
            # not folded into the medians as a zero
            runs = [r for r in all_runs if r.get("throughput")] or all_runs
            row = {key: median([r.get(key) for r in runs]) for key in KEYS}
            row["failed_runs"] = sum(1 for r in all_runs if not r.get("throughput"))
            lat = "handshake_latency_ms" if name.startswith("connect") else \
                ("push_latency_ms" if name.startswith("push") else "latency_ms")
            row["latency_p50_ms"] = median([nested(r, lat, "p50") for r in runs])
            row["latency_p99_ms"] = median([nested(r, lat, "p99") for r in runs])
            row["machine_busy_percent"] = median([nested(r, "machine", "busy_percent") for r in runs])
            row["loadgen_worker_cpu_percent"] = median(
                [max(w["cpu_percent"] for w in r["loadgen_workers"]) for r in runs])
            row["saturated"] = [nested(r, "saturated") for r in runs]
            row["runs"] = len(all_runs)
            row["throughput_all_runs"] = [r.get("throughput") for r in all_runs]
            summary.setdefault(name, {})[target] = row
    for name, row in summary.items():
        base_runs = results.get(baseline, {}).get(name)
        for target in row:
            if target == baseline or not base_runs:
                continue
            ours = results[target][name]
            pairs = list(zip(ours, base_runs))
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


def markdown(summary, meta, descriptions):
    lines = ["| scenario | target | ops/s | ratio | server CPU µs/op | CPU/op ratio | server CPU % "
             "| p50 / p99 ms | RSS MB | load tool CPU % (µs/op) | nearest 100% of a core |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in summary:
        for target, r in summary[name].items():
            rss = _fmt((r.get("server_rss_kb") or 0) / 1024.0, 0)
            if r.get("server_rss_kb_per_connection") is not None:
                rss += " (%s KB/conn)" % _fmt(r["server_rss_kb_per_connection"], 1)
            served = _fmt(r.get("throughput"))
            if r.get("failed_runs"):
                served += " (%d of %d rounds served nothing)" % (r["failed_runs"], r["runs"])
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s (%s) | %s |" % (
                name, target, served, _fmt(r.get("throughput_ratio"), 2),
                _fmt(r.get("server_cpu_us_per_op"), 1), _fmt(r.get("cpu_per_op_ratio"), 2),
                _fmt(r.get("server_cpu_percent")), _fmt(r.get("latency_p50_ms"), 1),
                _fmt(r.get("latency_p99_ms"), 1), rss, _fmt(r.get("loadgen_cpu_percent")),
                _fmt(r.get("loadgen_cpu_us_per_op"), 1), saturation_text(r["saturated"])))
    legend = ["", "Scenarios: " + "; ".join("%s = %s" % (n, descriptions.get(n, n)) for n in summary) + ".",
              "Medians of %(runs)d rounds of %(duration_s)s s (after %(warmup_s)s s warm-up), %(transport)s, "
              "targets started one at a time, order alternating; ratios are target/%(baseline)s, medians "
              "of the per-round ratios. Server CPU is all the target's processes. Machine: "
              "%(cpus)d cores, %(machine)s; commit %(commit)s; `%(command)s`." % meta]
    return "\n".join(lines + legend)


def run_rounds(targets, scenarios, args):
    """{target: {scenario: [result per round]}}; `targets` maps names to target factories,
    `scenarios` names to BenchOptions fields."""
    # a SIGTERM unwinds like Ctrl-C, so the running target is stopped (its processes not left behind)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = {}
    names = list(targets)
    for round_no in range(args.runs):
        order = names if round_no % 2 == 0 else list(reversed(names))
        for target_name in order:
            with targets[target_name]() as target:
                warm_up(target, args)
                for name, spec in scenarios.items():
                    result = run_scenario(target, spec, args)
                    results.setdefault(target_name, {}).setdefault(name, []).append(result)
                    print("round %d %-16s %-12s ops/s %-9s server us/op %-7s load %%%s errors %s "
                          "machine %s%%" % (round_no + 1, target_name, name, result.get("throughput"),
                                            result.get("server_cpu_us_per_op"),
                                            result.get("loadgen_cpu_percent"), result["errors"],
                                            nested(result, "machine", "busy_percent")),
                          file=sys.stderr, flush=True)
    return results


WARM_UP = dict(mode="echo", clients=50, inflight=4, duration=3.0, warmup=0.0)


def warm_up(target, args):
    """An unrecorded echo run right after a target starts: node's JIT (and our caches) warm up
    before the first measured scenario, which would otherwise pay for it alone."""
    run_bench(BenchOptions(port=list(target.ports), transport=args.transport, **WARM_UP))


def run_scenario(target, spec, args):
    options = BenchOptions(port=list(target.ports), transport=args.transport, workers=args.workers,
                           duration=args.duration, warmup=args.warmup, pids=tuple(target.pids),
                           coalesce_us=args.coalesce_us, **spec)
    with open("/proc/loadavg") as f:
        load_before = [float(x) for x in f.read().split()[:3]]
    result = run_bench(options)
    result["loadavg_before"] = load_before
    return result


def add_arguments(parser, runs=5, duration=5.0):
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--duration", type=float, default=duration)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--transport", default="ws", choices=["ws", "tcp"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--coalesce-us", type=int, default=0,
                        help="the load tool's sleep after a quiet poll (zpomelo bench --coalesce-us)")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")


def pick(parser, value, known, what):
    names = value.split(",")
    for name in names:
        if name not in known:
            parser.error("unknown %s %r (known: %s)" % (what, name, ", ".join(known)))
    return names


def report(results, args, baseline, descriptions, began, out):
    summary = summarize(results, baseline)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or os.environ.get("ZPOMELO_COMMIT", "unknown")
    meta = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit,
            "cpus": os.cpu_count(), "machine": _cpu_model(), "python": platform.python_version(),
            "command": " ".join(["python"] + [os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
            "transport": args.transport, "duration_s": args.duration, "warmup_s": args.warmup,
            "workers": args.workers, "runs": args.runs, "baseline": baseline,
            "descriptions": descriptions,
            "wall_s": round(time.time() - began)}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"meta": meta, "summary": summary, "runs": results}, f, indent=1)
    table = markdown(summary, meta, descriptions)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    print("\nwritten to %s (%d s)" % (out, meta["wall_s"]), file=sys.stderr)
    return table


def rerender(path, descriptions=None):
    """The markdown table again from a saved JSON report (after changing the summary code):
    `python tests/bench/sidebyside.py tests/bench/results/vs_pinus.json`."""
    with open(path) as f:
        report = json.load(f)
    meta = report["meta"]
    return markdown(summarize(report["runs"], meta["baseline"]), meta,
                    descriptions or meta.get("descriptions", {}))


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
    print(rerender(sys.argv[1]))
