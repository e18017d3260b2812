"""The load run: worker processes, their schedule, server samples and the merged JSON result.

``run_bench(BenchOptions(...)) -> dict``. It starts ``workers`` processes
(``python -m zpomelo.bench.worker``), gives each its share of the clients, waits until all are
connected (and, in chat modes, in the channel), starts them at one wall-clock instant, samples the
given server pids over the measurement window (after the warmup) and merges what the workers
report. It waits cooperatively (gevent subprocess pipes and sleeps), so it can also run inside a
process that hosts servers in the same gevent loop (the tests do).
"""
import dataclasses
import json
import logging
import os
import sys
import time
import uuid

import gevent
from gevent import subprocess

from zpomelo.bench.stats import Histogram, machine_report, process_report, read_machine, sample_processes

logger = logging.getLogger(__name__)

MODES = ("echo", "chat", "broadcast", "connect")
DEFAULT_ROUTES = {"echo": "chat.chatHandler.echo", "chat": "chat.chatHandler.send",
                  "broadcast": "chat.chatHandler.send", "connect": None}
DEFAULT_BODY = {"hello": "world"}
START_DELAY = 0.3          # seconds between "go" and the start, so every worker starts together
RESULT_GRACE = 15.0        # how long after the window the workers may take to drain and report
CONNECT_SETTLE = 0.5       # connect mode: let the servers finish the handshake ACKs before sampling RSS


class BenchError(Exception):
    """The run could not be done (a worker failed or timed out); the message says what to check."""


@dataclasses.dataclass
class BenchOptions:
    mode: str = "echo"
    host: str = "127.0.0.1"
    port: object = 3010           # one port, or a list of frontend ports the clients are dealt over
    transport: str = "ws"
    clients: int = 50
    inflight: int = None          # echo/chat: requests in flight per client (1); connect: handshakes at once per worker (50)
    duration: float = 10.0
    warmup: float = 1.0
    route: str = None
    body: dict = None
    senders: int = 10
    rid: str = None
    workers: int = 1
    pids: tuple = ()
    timeout: float = 10.0         # per request
    connect_timeout: float = 10.0
    coalesce_us: int = 0          # see zpomelo.bench.engine.COALESCE
    rate: float = None            # echo: requests/s over all clients, paced (modes.PacedEchoLoad)

    def ports(self):
        return list(self.port) if isinstance(self.port, (list, tuple)) else [self.port]

    def validate(self):
        if self.mode not in MODES:
            raise BenchError("mode must be one of %s, got %r" % (", ".join(MODES), self.mode))
        if self.transport not in ("ws", "tcp"):
            raise BenchError("transport must be ws or tcp, got %r" % (self.transport,))
        if self.clients < 1 or self.workers < 1:
            raise BenchError("need at least one client and one worker")
        if self.inflight is not None and self.inflight < 1:
            raise BenchError("inflight must be at least 1")
        if self.duration <= 0 or self.warmup < 0:
            raise BenchError("duration must be > 0 and warmup >= 0")
        if not self.ports() or not all(isinstance(p, int) and 0 < p < 65536 for p in self.ports()):
            raise BenchError("port must be a TCP port number (or a list of them), got %r" % (self.port,))
        if not 0 <= self.coalesce_us <= 100000:
            raise BenchError("coalesce_us must be in 0..100000 (microseconds), got %r" % (self.coalesce_us,))
        if self.rate is not None:
            if self.mode != "echo":
                raise BenchError("rate paces echo requests only; %s mode runs as fast as its "
                                 "answers come (leave rate out)" % self.mode)
            if not 0 < self.rate <= 10000000:
                raise BenchError("rate must be a number of requests per second above 0, got %r"
                                 % (self.rate,))
        if self.mode in ("chat", "broadcast") and self.senders < 1:
            raise BenchError("chat and broadcast modes need at least one sender")


def worker_configs(options, run_id):
    """One config per worker; clients are dealt round-robin so senders spread over workers."""
    workers = min(options.workers, options.clients)
    inflight = options.inflight or (50 if options.mode == "connect" else 1)
    base = {"mode": options.mode, "host": options.host, "ports": options.ports(),
            "transport": options.transport, "inflight": inflight, "duration": options.duration,
            "warmup": options.warmup, "route": options.route or DEFAULT_ROUTES[options.mode],
            "body": DEFAULT_BODY if options.body is None else options.body,
            "senders": min(options.senders, options.clients), "rid": options.rid or "bench-" + run_id,
            "uid_prefix": "b" + run_id, "timeout": options.timeout,
            "connect_timeout": options.connect_timeout, "coalesce": options.coalesce_us / 1e6}
    configs = [dict(base, indices=list(range(w, options.clients, workers))) for w in range(workers)]
    for config in configs:     # each worker paces its share of the clients
        config["rate"] = options.rate and options.rate * len(config["indices"]) / options.clients
    return configs


class WorkerProcess:
    def __init__(self, config):
        env = dict(os.environ)
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen([sys.executable, "-m", "zpomelo.bench.worker", json.dumps(config)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def send(self, line):
        self.proc.stdin.write(line.encode("ascii") + b"\n")
        self.proc.stdin.flush()

    def expect(self, event, timeout):
        """The next event line, which must be `event`; BenchError on timeout, exit or surprise."""
        with gevent.Timeout(timeout, False):
            line = self.proc.stdout.readline()
            if not line:
                raise BenchError("a load worker exited (code %s) before reporting %r; see its "
                                 "messages above" % (self.proc.wait(), event))
            message = json.loads(line)
            if message.get("event") != event:
                raise BenchError("a load worker reported %r while %r was expected"
                                 % (message.get("event"), event))
            return message
        raise BenchError("a load worker did not report %r within %.0f s" % (event, timeout))

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def _expect_all(workers, event, timeout):
    greenlets = [gevent.spawn(w.expect, event, timeout) for w in workers]
    gevent.joinall(greenlets)
    return [g.get() for g in greenlets]


def run_bench(options):
    options.validate()
    run_id = uuid.uuid4().hex[:8]
    configs = worker_configs(options, run_id)
    setup_timeout = 30.0 + options.clients / 20.0
    workers = []
    try:
        for config in configs:
            workers.append(WorkerProcess(config))
        _expect_all(workers, "ready", setup_timeout)
        rss_idle = sample_processes(options.pids)
        start = time.time() + START_DELAY
        for worker in workers:
            worker.send("go %.6f" % start)
        if options.mode == "connect":
            machine0 = read_machine()
            _expect_all(workers, "connected", setup_timeout)
            gevent.sleep(CONNECT_SETTLE)
            before, after = rss_idle, sample_processes(options.pids)
            machine1 = read_machine()
            for worker in workers:
                worker.send("release")
        else:
            gevent.sleep(max(0.0, start + options.warmup - time.time()))
            before, machine0 = sample_processes(options.pids), read_machine()
            gevent.sleep(max(0.0, start + options.warmup + options.duration - time.time()))
            after, machine1 = sample_processes(options.pids), read_machine()
        results = _expect_all(workers, "result", RESULT_GRACE + options.timeout)
    finally:
        for worker in workers:
            worker.stop()
    out = summarize(options, configs, results, before, after, rss_idle)
    out["machine"] = machine_report(machine0, machine1)
    out["saturated"] = saturated(out)
    return out


def saturated(out):
    """Which process was nearest 100% of a core (servers and load workers), and whether the
    machine itself was full (then nobody gets a whole core: a shared or too small machine)."""
    candidates = [(s["cpu_percent"], s["name"]) for s in out.get("server", {}).values()
                  if "cpu_percent" in s]
    candidates += [(w["cpu_percent"], "load worker %d" % w["pid"]) for w in out["loadgen_workers"]]
    if not candidates:
        return None
    percent, name = max(candidates)
    verdict = {"process": name, "cpu_percent": percent}
    machine = out.get("machine") or {}
    if machine.get("busy_percent", 0) >= 90:
        verdict["machine_full"] = True     # every core busy: processes queue for CPU
    return verdict


def summarize(options, configs, results, before, after, rss_idle):
    latency, push_latency = Histogram(), Histogram()
    for result in results:
        latency.merge(Histogram.from_json(result["latency"]))
        push_latency.merge(Histogram.from_json(result["push_latency"]))
    elapsed = max(r["elapsed"] for r in results) or 1e-9
    errors = sum(r["errors"] for r in results)          # setup errors included
    samples = [s for r in results for s in r["error_samples"]]
    config = configs[0]
    out = {"mode": options.mode,
           "target": " ".join("%s:%s" % (options.host, port) for port in options.ports()),
           "transport": options.transport, "clients": options.clients,
           "connected": sum(r["connected"] for r in results), "workers": len(configs),
           "inflight": config["inflight"], "route": config["route"],
           "duration_s": round(elapsed, 3), "errors": errors, "error_samples": samples[:10]}
    if options.mode == "connect":
        made = sum(r["requests"] for r in results)
        out.update(connections=made, throughput=round(made / elapsed, 1),
                   connects_per_s=round(made / elapsed, 1), handshake_latency_ms=latency.summary_ms())
    else:
        requests = sum(r["requests"] for r in results)
        out.update(warmup_s=options.warmup, requests=requests,
                   requests_per_s=round(requests / elapsed, 1), latency_ms=latency.summary_ms())
        if options.mode == "echo":
            out["throughput"] = out["requests_per_s"]
            if options.rate:
                late = sum(r.get("late", 0) for r in results)
                # kept: the server answered at the rate asked (within 3%), so the CPU per request
                # was measured at that load; late answers say it fell behind at times
                out.update(rate=options.rate, late=late,
                           rate_kept=out["requests_per_s"] >= 0.97 * options.rate)
        else:
            pushes = sum(r["pushes"] for r in results)
            out.update(senders=config["senders"], rid=config["rid"], pushes=pushes,
                       pushes_per_s=round(pushes / elapsed, 1), throughput=round(pushes / elapsed, 1),
                       push_latency_ms=push_latency.summary_ms())
    loadgen_cpu = sum(r["cpu_s"] for r in results)
    out["loadgen_cpu_percent"] = round(100.0 * loadgen_cpu / elapsed, 1)
    out["loadgen_workers"] = [{"pid": r.get("pid"), "cpu_percent": round(100.0 * r["cpu_s"] / (r["elapsed"] or 1e-9), 1)}
                              for r in results]
    operations = _operations(options, out)
    if operations:
        out["loadgen_cpu_us_per_op"] = round(1e6 * loadgen_cpu / operations, 2)
    if options.pids:
        out.update(_server_numbers(options, out, before, after, rss_idle))
    return out


def _server_numbers(options, out, before, after, rss_idle):
    servers = process_report(before, after, rss_before=rss_idle)
    numbers = {"server": servers}
    alive = [s for s in servers.values() if "cpu_s" in s]
    numbers["server_rss_kb"] = sum(s["rss_kb"] for s in alive)
    if options.mode == "connect":
        grown = sum(s["rss_kb"] - s.get("rss_before_kb", s["rss_kb"]) for s in alive)
        if out["connections"]:
            numbers["server_rss_kb_per_connection"] = round(grown / out["connections"], 2)
    cpu_s = sum(s["cpu_s"] for s in alive)
    numbers["server_cpu_percent"] = round(sum(s["cpu_percent"] for s in alive), 1)
    operations = _operations(options, out)
    if operations:
        numbers["server_cpu_us_per_op"] = round(1e6 * cpu_s / operations, 2)
    return numbers


def _operations(options, out):
    """What one operation is: a connection (connect), a delivered push (chat, broadcast) or an
    answered request (echo)."""
    if options.mode == "connect":
        return out["connections"]
    return out["pushes"] if options.mode in ("chat", "broadcast") else out["requests"]
