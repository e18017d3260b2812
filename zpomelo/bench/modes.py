"""The load one worker process puts on a server, per mode (callbacks of engine.Engine).

- echo: every client keeps `inflight` requests on `route` in flight; an answer sends the next.
  With a `rate` (requests/s of this worker) the requests are paced instead (PacedEchoLoad).
- chat: every client enters the channel `rid` through `connector.entryHandler.entry {uid, rid}`;
  the first `senders` clients keep `inflight` `chat.chatHandler.send` requests in flight each;
  every client counts the `onChat` pushes it receives; every LATENCY_EVERY-th client also takes
  their latency from the sender's clock (in the push).
- broadcast: like chat, but senders send notifies and are paced by the delivery of their own
  message (each sender is a channel member): the fan-out rate without request/response overhead.
- connect: see worker.py (connections and handshakes, nothing sent after).

The request id of an answer names its in-flight slot (ids 1..inflight), so an echo answer costs
a counter, a histogram entry and one constant frame appended to the connection's batch.
"""
import heapq
import time

from zpomelo.bench import wire
from zpomelo.bench.engine import READY
from zpomelo.bench.stats import Histogram

ENTRY_ROUTE = "connector.entryHandler.entry"
SEND_ROUTE = "chat.chatHandler.send"
ENTRY_ID = 1
MAX_ERROR_SAMPLES = 5
# Push latency is taken on every LATENCY_EVERY-th member only (parsing the sender's timestamp out
# of every push would cost the tool a quarter of what the server spends delivering it); the
# others only count their pushes, in bulk (wire.scan count_pushes).
LATENCY_EVERY = 32
_CODE = b'"code":'
_OK = b"200"
_CONTENT = b'"content":'


class Phase:
    """Shared by all clients of a worker: `running` (may send), `measuring` (counts)."""
    __slots__ = ("running", "measuring")

    def __init__(self):
        self.running = False
        self.measuring = False


class WorkerStats:
    def __init__(self):
        self.requests = 0          # answered requests inside the window
        self.late = 0              # paced echo: answers that came after their slot's next send time
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
        return {"requests": self.requests, "pushes": self.pushes, "errors": self.errors, "late": self.late,
                "error_samples": self.error_samples, "latency": self.latency.to_json(),
                "push_latency": self.push_latency.to_json()}


def error_answer(data, start, end):
    """The answer at data[start:end] is a Pomelo-style failure ({"code": not 200})."""
    at = data.find(_CODE, start, end)
    return at >= 0 and data[at + 7:at + 10] != _OK


class EchoLoad:
    """`inflight` requests per client on one route, each answer sending the next."""

    def __init__(self, config, phase, stats):
        self.route = config["route"]
        self.body = config["body"]
        self.inflight = config["inflight"]
        self.timeout = config["timeout"]
        self.phase = phase
        self.stats = stats
        self.engine = None
        self.frames = None
        self.pending = []          # conn -> frames its answers released, sent once per read

    def attach(self, engine):
        self.engine = engine

    def ready(self, conn):
        conn.t0 = [0.0] * self.inflight
        self.engine.setup_done(conn)

    def start(self, conn):
        if self.frames is None:
            self.frames = wire.request_frames(self.engine.framer, self.route, self.body, self.inflight,
                                              self.engine.sys.get("routeToCode"))
        now = time.perf_counter()
        for slot in range(self.inflight):
            conn.t0[slot] = now
        self.engine.send(conn, b"".join(self.frames))

    def answered(self, conn, data, start, end, now):
        slot = data[start + 5] - 1
        if not self.phase.running:
            conn.t0[slot] = 0.0
            return
        self.record(data, start, end, now - conn.t0[slot])
        conn.t0[slot] = now
        self.pending.append(self.frames[slot])

    def record(self, data, start, end, latency):
        """Count one answer of the window (or its error, at any time while running)."""
        stats = self.stats
        if error_answer(data, start, end):
            stats.error(data[start + 6:end][:200])
        elif self.phase.measuring:
            stats.requests += 1
            stats.latency.record(latency)

    def flush(self, conn):
        pending = self.pending
        if pending:
            self.engine.send(conn, pending[0] if len(pending) == 1 else b"".join(pending))
            pending.clear()

    def pushed(self, conn, data, start, end, now):
        pass

    def pushes_counted(self, conn, count, data, used):
        pass

    def lost(self, conn, why):
        if self.phase.running:
            self.stats.error("connection closed: %s" % why)

    def check(self, now):
        """Requests unanswered for longer than the timeout count as errors (once each)."""
        if not self.phase.running:
            return
        limit = now - self.timeout
        for conn in self.engine.ready:
            t0 = conn.t0
            if t0 is None:
                continue
            for slot, sent in enumerate(t0):
                if 0.0 < sent < limit:
                    self.stats.error("request timeout: no answer within %s s" % self.timeout)
                    t0[slot] = 0.0

    def outstanding(self):
        return sum(1 for conn in self.engine.ready if conn.t0 for sent in conn.t0 if sent)


class PacedEchoLoad(EchoLoad):
    """Echo at a fixed rate: each in-flight slot sends one request every ``interval`` seconds
    (its schedule, not its answer, sets the next send), so two servers, or two routes, get the
    same arrivals, and their CPU per request compares like for like.
    A closed loop runs each at its own speed: a faster route is measured with more requests per
    wake-up, which alone lowers its CPU per request. An answer later than its slot's next send
    time sends at once and moves that slot's schedule on (``late`` counts these: the server did
    not keep up with the rate), never a burst of the missed sends. Latency is from the send."""

    def __init__(self, config, phase, stats):
        super().__init__(config, phase, stats)
        self.rate = config["rate"]
        self.interval = None       # seconds between two sends of one slot
        self._first = 0.0          # when the first slot sends
        self.due = []              # heap of (send time, tie-breaker, conn, slot)
        self._ties = 0
        self._started = 0          # slots given their first send time so far

    def start(self, conn):
        if self.frames is None:
            self.frames = wire.request_frames(self.engine.framer, self.route, self.body, self.inflight,
                                              self.engine.sys.get("routeToCode"))
            slots = len(self.engine.ready) * self.inflight
            self.interval = slots / self.rate
            self._first = time.perf_counter()
        conn.tag = [0.0] * self.inflight        # each slot's scheduled send time
        for slot in range(self.inflight):        # first sends spread evenly over one interval
            self._schedule(conn, slot, self._first + self._started / self.rate)
            self._started += 1

    def _schedule(self, conn, slot, when):
        conn.tag[slot] = when
        self._ties += 1
        heapq.heappush(self.due, (when, self._ties, conn, slot))

    def answered(self, conn, data, start, end, now):
        slot = data[start + 5] - 1
        t0 = conn.t0[slot]
        conn.t0[slot] = 0.0
        if not self.phase.running:
            return
        self.record(data, start, end, now - t0)
        when = conn.tag[slot] + self.interval
        if when > now:
            self._schedule(conn, slot, when)
            return
        if self.phase.measuring:
            self.stats.late += 1
        conn.tag[slot] = now
        conn.t0[slot] = now
        self.pending.append(self.frames[slot])

    def tick(self, now):
        """Send what is due (once running); the seconds until the next send, or None."""
        due = self.due
        if not self.phase.running:
            due.clear()
            return None
        frames = self.frames
        send = self.engine.send
        while due and due[0][0] <= now:
            _, _, conn, slot = heapq.heappop(due)
            if conn.state == READY:
                conn.t0[slot] = now
                send(conn, frames[slot])
        return due[0][0] - now if due else None


class ChatLoad(EchoLoad):
    """Everyone joins one channel; senders send requests; everyone counts the pushes."""

    notify = False

    def __init__(self, config, phase, stats):
        super().__init__(config, phase, stats)
        self.uid_prefix = config["uid_prefix"]
        self.rid = config["rid"]
        self.senders = config["senders"]
        self.route = config.get("route") or SEND_ROUTE

    def uid(self, index):
        return "%s-%d" % (self.uid_prefix, index)

    def ready(self, conn):
        conn.t0 = [0.0] * self.inflight
        conn.tag = ('"from":"%s"' % self.uid(conn.index)).encode("utf-8") if self.notify else None
        conn.count_pushes = conn.index % LATENCY_EVERY != 0   # no latency taken: count in bulk
        self.engine.send(conn, wire.request_frame(self.engine.framer, ENTRY_ID, ENTRY_ROUTE,
                                                  {"uid": self.uid(conn.index), "rid": self.rid},
                                                  self.engine.sys.get("routeToCode")))

    def start(self, conn):
        if conn.index < self.senders:
            for slot in range(self.inflight):
                self._send(conn, slot)
            self.flush(conn)

    def _send(self, conn, slot):
        body = {"content": time.time()}
        r2c = self.engine.sys.get("routeToCode")
        if self.notify:
            self.pending.append(wire.notify_frame(self.engine.framer, self.route, body, r2c))
            return
        conn.t0[slot] = time.perf_counter()
        self.pending.append(wire.request_frame(self.engine.framer, slot + 1, self.route, body, r2c))

    def answered(self, conn, data, start, end, now):
        if conn.state != READY:
            if error_answer(data, start, end):
                self.engine.setup_failed(conn, "setup: %s answered %r"
                                         % (ENTRY_ROUTE, data[start + 6:end][:200]))
            else:
                self.engine.setup_done(conn)
            return
        slot = data[start + 5] - 1
        t0 = conn.t0[slot]
        conn.t0[slot] = 0.0
        if not self.phase.running:
            return
        if error_answer(data, start, end):
            self.stats.error(data[start + 6:end][:200])
        elif self.phase.measuring:
            self.stats.requests += 1
            self.stats.latency.record(now - t0)
        self._send(conn, slot)

    def pushed(self, conn, data, start, end, now):
        phase = self.phase
        if phase.measuring:
            self.stats.pushes += 1
            if conn.index % LATENCY_EVERY:
                pass
            else:
                at = data.find(_CONTENT, start, end)
                if at >= 0:
                    stop = data.find(b"}", at, end)
                    try:
                        self.stats.push_latency.record(time.time() - float(data[at + 10:stop]))
                    except ValueError:
                        pass
        if conn.tag is not None and phase.running and conn.index < self.senders \
                and data.find(conn.tag, start, end) >= 0:
            self._send(conn, 0)           # broadcast: our own message came back, send the next

    def pushes_counted(self, conn, count, data, used):
        """`count` pushes arrived in data[:used] for a client that takes no latency."""
        phase = self.phase
        if phase.measuring:
            self.stats.pushes += count
        if conn.tag is not None and phase.running and conn.index < self.senders:
            for _ in range(data.count(conn.tag, 0, used)):   # broadcast: ours came back
                self._send(conn, 0)


class BroadcastLoad(ChatLoad):
    notify = True


LOADS = {"echo": EchoLoad, "chat": ChatLoad, "broadcast": BroadcastLoad, "paced": PacedEchoLoad}
