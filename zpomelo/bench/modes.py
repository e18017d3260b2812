"""The load one worker process puts on a server, per mode (runs inside the worker's gevent loop).

- echo: every client keeps `inflight` requests on `route` in flight; a response sends the next.
- chat: every client enters the channel `rid` through `connector.entryHandler.entry {uid, rid}`;
  the first `senders` clients keep `inflight` `chat.chatHandler.send` requests in flight each;
  every client counts the `onChat` pushes it receives (their latency from the sender's clock).
- broadcast: like chat, but senders send notifies and are paced by the delivery of their own
  message (each sender is a channel member): the fan-out rate without request/response overhead.
- connect: see worker.py (connections and handshakes, nothing sent after).

Callbacks run in each client's reader greenlet: no greenlet per request.
"""
import time

from zpomelo.bench.stats import Histogram
from zpomelo.client import ClientError

ENTRY_ROUTE = "connector.entryHandler.entry"
SEND_ROUTE = "chat.chatHandler.send"
PUSH_ROUTE = "onChat"
MAX_ERROR_SAMPLES = 5


class Phase:
    """Shared by all clients of a worker: `running` (may send), `measuring` (counts)."""
    __slots__ = ("running", "measuring")

    def __init__(self):
        self.running = False
        self.measuring = False


class WorkerStats:
    def __init__(self):
        self.requests = 0          # answered requests inside the window
        self.pushes = 0            # pushes received inside the window
        self.errors = 0            # at any time while running (setup included)
        self.error_samples = []
        self.latency = Histogram()
        self.push_latency = Histogram()

    def error(self, what):
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(str(what))

    def to_json(self):
        return {"requests": self.requests, "pushes": self.pushes, "errors": self.errors,
                "error_samples": self.error_samples, "latency": self.latency.to_json(),
                "push_latency": self.push_latency.to_json()}


def _error_body(body):
    """A response that reports a failure (Pomelo-style {"code": not 200})."""
    return body.__class__ is dict and "code" in body and body["code"] != 200


def _count_answer(phase, stats, t0, error, body):
    """Record one answer in the stats; False once the run is over (send nothing more)."""
    if not phase.running:
        return False
    if error is not None or _error_body(body):
        stats.error(error or body)
    elif phase.measuring:
        stats.requests += 1
        stats.latency.record(time.perf_counter() - t0)
    return True


class EchoLoad:
    """`inflight` requests per client on one route, each answer sending the next."""

    def __init__(self, config, phase, stats):
        self.route = config["route"]
        self.body = config["body"]
        self.inflight = config["inflight"]
        self.phase = phase
        self.stats = stats

    def setup(self, client, index):
        pass

    def start(self, client, index):
        for _ in range(self.inflight):
            self._send(client)

    def _send(self, client):
        t0 = time.perf_counter()
        try:
            client.request_async(self.route, self.body,
                                 lambda error, body: self._answered(client, t0, error, body))
        except ClientError as exc:
            if self.phase.running:
                self.stats.error(exc)

    def _answered(self, client, t0, error, body):
        if _count_answer(self.phase, self.stats, t0, error, body):
            self._send(client)


class ChatLoad:
    """Everyone joins one channel; senders send requests; everyone counts the pushes."""

    notify = False

    def __init__(self, config, phase, stats):
        self.uid_prefix = config["uid_prefix"]
        self.rid = config["rid"]
        self.senders = config["senders"]
        self.inflight = config["inflight"]
        self.route = config.get("route") or SEND_ROUTE
        self.phase = phase
        self.stats = stats

    def uid(self, index):
        return "%s-%d" % (self.uid_prefix, index)

    def setup(self, client, index):
        reply = client.request(ENTRY_ROUTE, {"uid": self.uid(index), "rid": self.rid})
        if _error_body(reply):
            raise RuntimeError("%s answered %r" % (ENTRY_ROUTE, reply))
        client.on(PUSH_ROUTE, self._push_handler(client, index))

    def _push_handler(self, client, index):
        phase = self.phase
        stats = self.stats
        wall = time.time
        own_uid = self.uid(index) if self.notify and index < self.senders else None

        def on_push(body):
            if phase.measuring:
                stats.pushes += 1
                sent = body.get("content")
                if sent.__class__ is float:
                    stats.push_latency.record(wall() - sent)
            if own_uid is not None and phase.running and body.get("from") == own_uid:
                self._send(client)   # broadcast: our own message came back, send the next
        return on_push

    def start(self, client, index):
        if index < self.senders:
            for _ in range(self.inflight):
                self._send(client)

    def _send(self, client):
        try:
            if self.notify:
                client.notify(self.route, {"content": time.time()})
                return
            t0 = time.perf_counter()
            client.request_async(self.route, {"content": time.time()},
                                 lambda error, body: self._answered(client, t0, error, body))
        except ClientError as exc:
            if self.phase.running:
                self.stats.error(exc)

    _answered = EchoLoad._answered


class BroadcastLoad(ChatLoad):
    notify = True


LOADS = {"echo": EchoLoad, "chat": ChatLoad, "broadcast": BroadcastLoad}
