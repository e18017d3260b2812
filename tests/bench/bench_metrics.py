"""What metrics cost on the request path: echo through connector -> chat -> client, metrics on vs
off, the two clusters running side by side and the rounds alternating between them.

    python tests/bench/bench_metrics.py [--runs 5] [--duration 8] [--clients 50] \
        [--out tests/bench/results/metrics.json]

Both clusters are copies of examples/bench (environment "test": every port 0) started with
`zpomelo start` (zpomelo.testing.ProcessCluster); in the "off" copy app.py also sets
`metrics: false`, which turns the endpoint off (the request counters, app.stats, are always
kept: the admin console reads them). During the "on" rounds a scraper GETs every server's /metrics every 5 s
(--scrape-interval), as Prometheus would. The load is `zpomelo bench --mode echo` (route chat.chatHandler.echo). The
report gives per-round and median throughput and server CPU per request (connector + chat), and
the on/off ratios; the target is within 5%.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from zpomelo.bench import BenchOptions, run_bench  # noqa: E402
from zpomelo.testing.process_cluster import ProcessCluster, copy_project  # noqa: E402

BENCH_APP = os.path.join(ROOT, "examples", "bench")
METRICS_OFF = """

_configure_with_metrics = configure


def configure(app):
    _configure_with_metrics(app)
    app.set("metrics", False)
"""


def start(workdir, name, metrics):
    project = copy_project(BENCH_APP, os.path.join(workdir, name), "test")
    if not metrics:
        with open(os.path.join(project, "app.py"), "a") as f:
            f.write(METRICS_OFF)
    cluster = ProcessCluster(project, "test").start()
    rows = cluster.servers()
    servers = {sid: row for sid, row in rows.items() if row["serverType"] != "master"}
    assert all(bool(row.get("metricsPort")) == metrics for row in servers.values()), servers
    return cluster, servers


class Scraper(threading.Thread):
    """GET every endpoint every `interval` seconds until stopped (Prometheus' part in the "on" rounds)."""

    def __init__(self, ports, interval):
        super().__init__(daemon=True)
        self.interval = interval
        self.ports = ports
        self.stop = threading.Event()
        self.scrapes = 0

    def run(self):
        while not self.stop.wait(self.interval):
            for port in self.ports:
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
                    r.read()
                self.scrapes += 1


def micro(calls=200_000):
    """In one process, no sockets: the added cost of one handler call and one RPC answer (us),
    best of 5, HandlerService.handle with a trivial handler, without counters (HandlerService
    alone) vs with app.stats' HandlerStats, and one RpcStats.reply."""
    from zpomelo.handler import FilterChain, HandlerService
    from zpomelo.metrics.stats import HandlerStats, RpcStats

    service = HandlerService(None, "bench", {"h": {"f": lambda app, msg, session: None}},
                             FilterChain())
    rpc = RpcStats(lambda server_id: "chat")

    def best(fn):
        times = []
        for _ in range(5):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return min(times) / calls * 1e6

    def handle():
        for _ in range(calls):
            service.handle("bench.h.f", {}, None)

    def rpc_reply():
        for _ in range(calls):
            rpc.reply("chat-1", "_sys", "forward", 0.0004, True)

    off = best(handle)
    service.stats = HandlerStats(service.has)
    on = best(handle)
    return {"handler_call_us_off": round(off, 3), "handler_call_us_on": round(on, 3),
            "handler_hook_us": round(on - off, 3), "rpc_reply_hook_us": round(best(rpc_reply), 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--scrape-interval", type=float, default=5.0)
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "bench", "results",
                                                      "metrics.json"))
    args = parser.parse_args()

    runs = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as workdir:
        clusters = {}
        try:
            for name in ("on", "off"):
                clusters[name] = start(workdir, name, name == "on")
            for round_no in range(args.runs):
                order = ("on", "off") if round_no % 2 == 0 else ("off", "on")
                for name in order:
                    cluster, servers = clusters[name]
                    scraper = None
                    if name == "on":
                        scraper = Scraper([row["metricsPort"] for row in servers.values()],
                                          args.scrape_interval)
                        scraper.start()
                    result = run_bench(BenchOptions(
                        mode="echo", port=servers["connector-server-1"]["clientPort"],
                        clients=args.clients, duration=args.duration, warmup=args.warmup,
                        pids=tuple(row["pid"] for row in servers.values())))
                    if scraper is not None:
                        scraper.stop.set()
                        scraper.join(10)
                        result["scrapes"] = scraper.scrapes
                    runs[name].append(result)
                    print("round %d metrics %-3s %9.1f req/s  %6.1f us server CPU/req  p50 %s ms"
                          "  errors %d" % (round_no + 1, name, result["throughput"],
                                           result.get("server_cpu_us_per_op", 0),
                                           result["latency_ms"].get("p50"), result["errors"]),
                          file=sys.stderr, flush=True)
        finally:
            for cluster, _ in clusters.values():
                cluster.stop()

    summary = {"micro": micro()}
    for name, results in runs.items():
        summary[name] = {
            "requests_per_s": statistics.median(r["throughput"] for r in results),
            "server_cpu_us_per_request": statistics.median(r["server_cpu_us_per_op"]
                                                           for r in results),
            "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in results),
            "p99_ms": statistics.median(r["latency_ms"]["p99"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "all_runs": [r["throughput"] for r in results],
            "all_cpu_us": [r["server_cpu_us_per_op"] for r in results]}
    # each round's on/off pair ran back to back: the median of those ratios follows the box's
    # load (which drifts between rounds) better than the ratio of the medians
    summary["paired_throughput_ratio_median"] = round(statistics.median(
        on["throughput"] / off["throughput"] for on, off in zip(runs["on"], runs["off"])), 3)
    summary["paired_cpu_ratio_median"] = round(statistics.median(
        on["server_cpu_us_per_op"] / off["server_cpu_us_per_op"]
        for on, off in zip(runs["on"], runs["off"])), 3)
    summary["throughput_on_over_off"] = round(
        summary["on"]["requests_per_s"] / summary["off"]["requests_per_s"], 3)
    summary["cpu_per_request_on_over_off"] = round(
        summary["on"]["server_cpu_us_per_request"] / summary["off"]["server_cpu_us_per_request"], 3)
    report = {"meta": {"when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                       "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
                       "loadavg": os.getloadavg()},
              "summary": summary, "runs": runs}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
