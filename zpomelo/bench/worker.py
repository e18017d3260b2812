"""One load worker process: ``python -m zpomelo.bench.worker '<json config>'``.

It talks to the parent (zpomelo.bench.load) with lines: it prints JSON events on stdout
(``ready`` once its clients are connected and set up, ``connected`` in connect mode, ``result``
at the end) and reads commands on stdin (``go <epoch seconds>``: start the load at that wall-clock
time; ``release``: connect mode may close its connections). The parent closing stdin stops it.
"""
import json
import logging
import resource
import sys
import time

import gevent
import gevent.pool
from gevent.fileobject import FileObjectPosix

from zpomelo.bench.modes import LOADS, Phase, WorkerStats
from zpomelo.bench.stats import Histogram
from zpomelo.client import Client, HandshakeCache

logger = logging.getLogger(__name__)

SETUP_CONCURRENCY = 50
DRAIN_TIMEOUT = 2.0
CLOSE_TIMEOUT = 0.5


class ParentLink:
    """Line events to the parent on stdout, commands from it on stdin."""

    def __init__(self):
        self._stdin = FileObjectPosix(sys.stdin.fileno(), "rb", close=False)

    @staticmethod
    def emit(event, **fields):
        fields["event"] = event
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()

    def command(self):
        """The next command line split in words; [] when the parent closed stdin."""
        line = self._stdin.readline()
        return line.decode("ascii", "replace").split()

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


def sleep_until(wall_time):
    gevent.sleep(max(0.0, wall_time - time.time()))


def open_client(config, cache, index):
    ports = config["ports"]       # clients are dealt over the frontends' ports by their index
    return Client.connect(config["host"], ports[index % len(ports)], transport=config["transport"],
                          timeout=config["connect_timeout"], cache=cache,
                          request_timeout=config["timeout"])


def close_all(clients):
    pool = gevent.pool.Pool(200)
    for client in clients:
        pool.spawn(client.close, CLOSE_TIMEOUT)
    pool.join(timeout=CLOSE_TIMEOUT * 4)
    pool.kill(block=False)


def run_load(config, link):
    phase = Phase()
    stats = WorkerStats()
    load = LOADS[config["mode"]](config, phase, stats)
    cache = HandshakeCache()
    clients = {}

    def connect(index):
        try:
            client = open_client(config, cache, index)
        except Exception as exc:
            stats.error("connect: %s" % exc)
            return
        try:
            load.setup(client, index)
        except Exception as exc:
            stats.error("setup: %s" % exc)
            client.close()
            return
        client.on_close(closed)
        clients[index] = client

    def closed(reason):
        if phase.running:        # closes after the run are ours
            stats.error("connection closed: %s" % reason)

    gevent.pool.Pool(SETUP_CONCURRENCY).map(connect, config["indices"])
    link.emit("ready", connected=len(clients), errors=stats.errors,
              error_samples=stats.error_samples)

    start = link.wait_go()
    sleep_until(start)
    phase.running = True
    for index, client in clients.items():
        load.start(client, index)
    sleep_until(start + config["warmup"])
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    phase.measuring = True
    sleep_until(start + config["warmup"] + config["duration"])
    phase.measuring = False
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    phase.running = False

    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline and any(c.pending_count for c in clients.values()):
        gevent.sleep(0.01)
    close_all(clients.values())
    link.emit("result", connected=len(clients), elapsed=elapsed, cpu_s=cpu, **stats.to_json())


def run_connect(config, link):
    """Connect (TCP/WebSocket + handshake) every client, `inflight` at a time; hold; close."""
    stats = WorkerStats()
    handshake = Histogram()
    cache = HandshakeCache()
    clients = []
    link.emit("ready", connected=0, errors=0)

    def connect(index):
        t0 = time.perf_counter()
        try:
            client = open_client(config, cache, index)
        except Exception as exc:
            stats.error("connect: %s" % exc)
            return
        handshake.record(time.perf_counter() - t0)
        clients.append(client)

    start = link.wait_go()
    sleep_until(start)
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    gevent.pool.Pool(config["inflight"]).map(connect, config["indices"])
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    link.emit("connected", connected=len(clients), elapsed=elapsed)
    link.command()                     # "release" (or EOF: the parent is done with us)
    close_all(clients)
    result = stats.to_json()
    result["latency"] = handshake.to_json()
    result["requests"] = len(clients)
    link.emit("result", connected=len(clients), elapsed=elapsed, cpu_s=cpu, **result)


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
