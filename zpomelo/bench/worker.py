"""One load worker process: ``python -m zpomelo.bench.worker '<json config>'``.

It talks to the parent (zpomelo.bench.load) with lines: it prints JSON events on stdout
(``ready`` once its clients are connected and set up, ``connected`` in connect mode, ``result``
at the end) and reads commands on stdin (``go <epoch seconds>``: start the load at that wall-clock
time; ``release``: connect mode may close its connections). The parent closing stdin stops it.
"""
import json
import logging
import os
import resource
import sys
import time

from zpomelo.bench.engine import Engine
from zpomelo.bench.modes import LOADS, Phase, WorkerStats
from zpomelo.bench.stats import Histogram

logger = logging.getLogger(__name__)

SETUP_CONCURRENCY = 50
DRAIN_TIMEOUT = 2.0


class ParentLink:
    """Line events to the parent on stdout, commands from it on stdin (read while idle only)."""

    @staticmethod
    def emit(event, **fields):
        fields["event"] = event
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()

    @staticmethod
    def command():
        """The next command line split in words; [] when the parent closed stdin."""
        return sys.stdin.readline().split()

    def wait_go(self):
        words = self.command()
        if not words or words[0] != "go":
            raise SystemExit("the parent went away before the start (%r)" % (words,))
        return float(words[1])


def raise_file_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wall_deadline(wall_time):
    """A wall-clock instant (shared by the workers) as a time.monotonic() deadline."""
    return time.monotonic() + max(0.0, wall_time - time.time())


def setup(config, engine):
    """Probe the handshake, then connect and set up every client of this worker."""
    engine.probe()
    engine.open(config["indices"], SETUP_CONCURRENCY)
    engine.loop(lambda: not engine.connecting(),
                time.monotonic() + config["connect_timeout"] * 2 + len(config["indices"]) / 50.0)


def run_load(config, link):
    phase = Phase()
    stats = WorkerStats()
    load = LOADS["paced" if config.get("rate") else config["mode"]](config, phase, stats)
    engine = Engine(config, stats, load)
    load.attach(engine)
    setup(config, engine)
    link.emit("ready", connected=len(engine.ready), errors=stats.errors,
              error_samples=stats.error_samples)

    start = link.wait_go()
    never = lambda: False  # noqa: E731
    engine.loop(never, wall_deadline(start))
    phase.running = True
    for conn in list(engine.ready):
        load.start(conn)
    engine.loop(never, wall_deadline(start + config["warmup"]))
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    phase.measuring = True
    engine.loop(never, wall_deadline(start + config["warmup"] + config["duration"]))
    phase.measuring = False
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    phase.running = False
    engine.loop(lambda: not load.outstanding(), time.monotonic() + DRAIN_TIMEOUT)
    connected = len(engine.ready)
    engine.close_all()
    link.emit("result", connected=connected, elapsed=elapsed, cpu_s=cpu, pid=os.getpid(), **stats.to_json())


class _Handshakes:
    """Connect mode's load: a connection is done when its handshake is; its time is recorded."""

    def __init__(self, stats):
        self.stats = stats
        self.histogram = Histogram()
        self.engine = None

    def ready(self, conn):
        self.histogram.record(time.monotonic() - conn.since)
        self.engine.setup_done(conn)

    def lost(self, conn, why):
        pass

    def check(self, now):
        pass

    def flush(self, conn):
        pass


def run_connect(config, link):
    """Connect (TCP/WebSocket + handshake) every client, `inflight` at a time; hold; close."""
    stats = WorkerStats()
    load = _Handshakes(stats)
    engine = Engine(config, stats, load)
    load.engine = engine
    engine.probe()
    link.emit("ready", connected=0, errors=stats.errors, error_samples=stats.error_samples)

    start = link.wait_go()
    engine.loop(lambda: False, wall_deadline(start))
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    engine.open(config["indices"], config["inflight"])
    engine.loop(lambda: not engine.connecting(),
                time.monotonic() + config["connect_timeout"] * 2 + len(config["indices"]) / 20.0)
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    connected = len(engine.ready)
    link.emit("connected", connected=connected, elapsed=elapsed)
    link.command()                     # "release" (or EOF: the parent is done with us)
    engine.close_all()
    result = stats.to_json()
    result["latency"] = load.histogram.to_json()
    result["requests"] = connected
    link.emit("result", connected=connected, elapsed=elapsed, cpu_s=cpu, pid=os.getpid(), **result)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="bench worker %(levelname)s %(name)s: %(message)s")
    config = json.loads(argv[0])
    raise_file_limit(len(config["indices"]) + 256)
    link = ParentLink()
    if config["mode"] == "connect":
        run_connect(config, link)
    else:
        run_load(config, link)
    return 0


if __name__ == "__main__":
    sys.exit(main())
