"""The load tool's client side: many Pomelo connections on one epoll loop, no greenlets.

A load worker must cost far less CPU per request than the server it measures, so this is plain
non-blocking sockets and `select.epoll`: per readable socket one `recv`, one `scan` of the bytes
(wire.py), a few integer comparisons per answer and one `send` of the constant pre-encoded frames
the answers release. No object is built per request beyond the scan's tuples.

`Engine.open(indices, concurrency)` connects clients (TCP connect, WebSocket upgrade, Pomelo
handshake and ACK) `concurrency` at a time; `Engine.loop(until)` serves sockets until
`until()` is true. What a client does once it is connected, with answers and with pushes is the
load's business (modes.py): `load.ready(conn)`, `load.answered(conn, data, start, end, now)`,
`load.pushed(conn, data, start, end, now)`, or, for a client whose `count_pushes` the load set,
`load.pushes_counted(conn, count, data, used)` once per read. A load with a `tick(now)` method
(paced echo) is called before every poll and bounds the poll's wait by the seconds it returns.
"""
import collections
import errno
import json
import select
import socket
import time

from zpomelo.bench import wire
from zpomelo.protocol import websocket

UPGRADE_LIMIT = 16384
RECV_SIZE = 262144
# After a poll that found few sockets ready, wait this long before the next (off by default):
# the answers of that time are then read in one wake-up. In a closed loop (a client sends its
# next request when the answer comes) every microsecond of that wait is added to each round
# trip, so it caps requests/s and squeezes every server's result toward the same number: at
# 500 us, echo with 50 clients measured 1.08x pinus where the same servers measured 1.34x with
# it off, and the tool's CPU per request was the same (7.5 / 7.2 us) either way.
COALESCE = 0.0
COALESCE_BELOW = 16

CONNECTING, UPGRADING, HANDSHAKING, SETTING_UP, READY, CLOSED = range(6)
_IN = select.EPOLLIN
_OUT = select.EPOLLOUT


class Conn:
    """One client connection (per-connection state only; nothing per request)."""
    __slots__ = ("index", "port", "sock", "fd", "state", "buf", "key", "since", "t0", "outbox",
                 "tag", "beat_due", "count_pushes")

    def __init__(self, index, port):
        self.index = index
        self.port = port
        self.sock = None
        self.fd = -1
        self.state = CONNECTING
        self.buf = b""
        self.key = None
        self.since = 0.0          # when the current setup step began (connect timeout)
        self.t0 = None            # per in-flight slot: send time of the request in it, 0 = free
        self.outbox = b""         # bytes a full socket buffer refused; sent on EPOLLOUT
        self.tag = None           # the load's own per-connection value
        self.beat_due = False     # a heartbeat is scheduled (Engine._beats)
        self.count_pushes = False  # the load only counts this client's pushes (load.pushes_counted)


class _Uncounted:
    def error(self, what):
        pass


class Engine:
    def __init__(self, config, stats, load):
        self.host = config["host"]
        self.ports = config["ports"]
        self.ws = config["transport"] == "ws"
        self.framer = wire.Framer(config["transport"])
        self.connect_timeout = config["connect_timeout"]
        self.stats = stats
        self.load = load
        self.epoll = select.epoll()
        self.conns = {}               # fd -> Conn, every open connection
        self.ready = []               # connections past their setup, in order
        self.rbuf = bytearray(RECV_SIZE)   # every read lands here (see _readable)
        self.heartbeat = self.framer.heartbeat()
        self.ack = self.framer.handshake_ack()
        self.sys = {}                 # the server's handshake sys (routeToCode, heartbeat, ...)
        self.dict_version = None
        self.setting_up = 0
        self._todo = []
        self._handshake = None        # (dict version, handshake frame)
        self.coalesce = config.get("coalesce", COALESCE)   # seconds
        # (due, conn): heartbeats to send, in due order (one interval for every connection)
        self._beats = collections.deque()

    # ---- connecting ------------------------------------------------------------------------

    def probe(self):
        """One connection to learn the handshake sys (route dictionary and its version), so
        the measured handshakes send dictVersion and get the short reply real clients get."""
        stats, self.stats = self.stats, _Uncounted()   # the measured connections count errors
        try:
            self.open([-1], 1)
            self.loop(lambda: not self.connecting(), time.monotonic() + self.connect_timeout + 1)
        finally:
            self.stats = stats
        probe = self.ready.pop() if self.ready else None
        if probe is not None:
            self.close(probe)
        return probe is not None

    def connecting(self):
        """Connections still being set up or waiting to start."""
        return self.setting_up > 0 or bool(self._todo)

    def open(self, indices, concurrency):
        """Start connecting `indices` (concurrency at a time); `loop` carries them through."""
        self._todo = list(reversed(indices))
        self._concurrency = concurrency
        self._start_more()

    def _start_more(self):
        while self._todo and self.setting_up < self._concurrency:
            index = self._todo.pop()
            self.setting_up += 1
            conn = Conn(index, self.ports[max(index, 0) % len(self.ports)])
            conn.since = time.monotonic()
            sock = conn.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.fd = sock.fileno()
            code = sock.connect_ex((self.host, conn.port))
            if code not in (0, errno.EINPROGRESS):
                self.setup_failed(conn, "connect to %s:%d: %s" % (self.host, conn.port,
                                                                  errno.errorcode.get(code, code)))
                continue
            self.conns[conn.fd] = conn
            self.epoll.register(conn.fd, _OUT)

    def setup_failed(self, conn, why):
        self.stats.error("connect: %s" % why)
        self.setup_done(conn, ok=False)

    def setup_done(self, conn, ok=True):
        """The load calls this when a connection is set up (after its entry request, say)."""
        self.setting_up -= 1
        if ok:
            conn.state = READY
            self.ready.append(conn)
        else:
            self.close(conn)
        self._start_more()

    def _connected(self, conn):
        err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.setup_failed(conn, "%s:%d: %s" % (self.host, conn.port, errno.errorcode.get(err, err)))
            return
        self.epoll.modify(conn.fd, _IN)
        if self.ws:
            conn.state = UPGRADING
            self.send(conn, self._upgrade_request(conn))
        else:
            self._send_handshake(conn)

    def _upgrade_request(self, conn):
        """The upgrade request with a fresh Sec-WebSocket-Key, as every real client sends: with
        one fixed key pinus answered the upgrades 3-7x slower (its handshakes stalled)."""
        request, conn.key = self.framer.upgrade(self.host, conn.port)
        return request

    def _send_handshake(self, conn):
        conn.state = HANDSHAKING
        if self._handshake is None or self._handshake[0] != self.dict_version:
            self._handshake = self.dict_version, self.framer.handshake(self.dict_version)
        self.send(conn, self._handshake[1])

    def _upgrade_reply(self, conn, data):
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > UPGRADE_LIMIT:
                self.setup_failed(conn, "no end to the HTTP upgrade reply")
            else:
                conn.buf = data
            return b""
        try:
            websocket.check_upgrade_response(data[:end + 4], conn.key)
        except Exception as exc:
            self.setup_failed(conn, "WebSocket upgrade: %s" % exc)
            return b""
        self._send_handshake(conn)
        return data[end + 4:]

    def _handshake_reply(self, conn, data, start, end):
        if self.sys and data.find(b'"code":200', start, end) >= 0 \
                and (self.dict_version is None or data.find(b'"dict"', start, end) < 0):
            self.send(conn, self.ack)      # the short reply the probe's dictVersion earns
            conn.state = SETTING_UP
            self.load.ready(conn)
            return
        try:
            reply = json.loads(bytes(data[start + 4:end]).decode("utf-8"))
        except ValueError as exc:
            self.setup_failed(conn, "handshake reply is not JSON: %s" % exc)
            return
        if reply.get("code") != 200:
            self.setup_failed(conn, "handshake refused: %r" % (reply,))
            return
        sys = reply.get("sys") or {}
        if sys.get("dictVersion") is not None or not self.sys:
            self.sys = sys
            self.dict_version = sys.get("dictVersion")
        self.send(conn, self.ack)
        conn.state = SETTING_UP
        if conn.index < 0:            # the probe: nothing more to set up
            self.setup_done(conn)
        else:
            self.load.ready(conn)

    # ---- serving ---------------------------------------------------------------------------

    def loop(self, until, deadline):
        """Serve every socket until `until()` is true or `deadline` (monotonic) passes."""
        poll = self.epoll.poll
        conns = self.conns
        coalesce = self.coalesce
        sleep = time.sleep
        tick = getattr(self.load, "tick", None)   # a paced load: sends on its own schedule
        clock = time.perf_counter
        next_check = 0.0
        while not until():
            now = time.monotonic()
            if now >= deadline:
                return False
            if now >= next_check:
                self._check_timeouts(now)
                self._send_beats(now)
                next_check = now + 0.2
            timeout = min(0.05, deadline - now)
            if tick is not None:
                wait = tick(clock())
                if wait is not None and wait < timeout:
                    timeout = wait if wait > 0 else 0
            ready = poll(timeout)
            for fd, events in ready:
                conn = conns.get(fd)
                if conn is None:
                    continue
                if events & _OUT:
                    if conn.state == CONNECTING:
                        self._connected(conn)
                        continue
                    self._flush(conn)
                if events & (_IN | select.EPOLLERR | select.EPOLLHUP):
                    self._readable(conn)
            if coalesce and len(ready) < COALESCE_BELOW and not self.setting_up:
                sleep(coalesce)
        return True

    def _readable(self, conn):
        # recv_into one buffer reused for every read: a fresh bytes object per recv costs an
        # allocation of RECV_SIZE (an mmap/munmap pair at this size) every time
        buf = self.rbuf
        try:
            n = conn.sock.recv_into(buf)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(conn, "read: %s" % exc)
            return
        if not n:
            self._lost(conn, "closed by the server")
            return
        if conn.buf:
            data = conn.buf + buf[:n]
            conn.buf = b""
            n = len(data)
        else:
            data = buf
        if conn.state == UPGRADING:
            data = self._upgrade_reply(conn, bytes(data[:n]))
            if not data:
                return
            n = len(data)
        items, used, pushes = wire.scan(data, self.ws, n, conn.count_pushes)
        if used < n:
            conn.buf = bytes(data[used:n])
        load = self.load
        if pushes:
            load.pushes_counted(conn, pushes, data, used)
        if not items:
            if pushes:
                load.flush(conn)
            return
        now = time.perf_counter()
        for kind, start, end in items:
            if kind == wire.RESPONSE:
                load.answered(conn, data, start, end, now)
            elif kind == wire.PUSH:
                load.pushed(conn, data, start, end, now)
            elif kind == wire.HEARTBEAT:
                self._beat_later(conn)
            elif kind == wire.HANDSHAKE and conn.state == HANDSHAKING:
                self._handshake_reply(conn, data, start, end)
            elif kind == wire.KICK:
                self._lost(conn, "kicked: %r" % data[start + 4:end][:200])
                return
            elif kind == wire.CLOSE:
                self._lost(conn, "WebSocket close from the server")
                return
            if conn.state == CLOSED:
                return
        load.flush(conn)

    def send(self, conn, data):
        """Write now; whatever the socket buffer refuses waits for EPOLLOUT, in order."""
        if conn.outbox:
            conn.outbox += data
            return
        try:
            sent = conn.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._lost(conn, "write: %s" % exc)
            return
        if sent < len(data):
            conn.outbox = data[sent:]
            self.epoll.modify(conn.fd, _IN | _OUT)

    def _flush(self, conn):
        data, conn.outbox = conn.outbox, b""
        self.epoll.modify(conn.fd, _IN)
        if data:
            self.send(conn, data)

    def _lost(self, conn, why):
        if conn.state == CLOSED:
            return
        if conn.state < READY:
            self.setup_failed(conn, why)
            return
        self.load.lost(conn, why)
        self.close(conn)

    def _beat_later(self, conn):
        """Answer a server heartbeat one interval later, as Pomelo's clients do. Answering at
        once made every connection a heartbeat ping-pong at the speed of its round trip (the
        server answers a client heartbeat at once): about a heartbeat per request, paid by the
        server measured. No interval in the handshake: the client sends none (Pomelo's too)."""
        interval = self.sys.get("heartbeat")
        if not interval or conn.beat_due:
            return
        conn.beat_due = True
        self._beats.append((time.monotonic() + interval, conn))

    def _send_beats(self, now):
        beats = self._beats
        while beats and beats[0][0] <= now:
            conn = beats.popleft()[1]
            conn.beat_due = False
            if conn.state != CLOSED:
                self.send(conn, self.heartbeat)

    def _check_timeouts(self, now):
        for conn in list(self.conns.values()):
            if conn.state < READY and now - conn.since > self.connect_timeout:
                self.setup_failed(conn, "%s:%d: no connection and handshake within %s s"
                                   % (self.host, conn.port, self.connect_timeout))
        self.load.check(time.perf_counter())

    def close(self, conn, polite=False):
        if conn.state == CLOSED:
            return
        conn.state = CLOSED
        if conn.fd in self.conns:
            del self.conns[conn.fd]
            try:
                self.epoll.unregister(conn.fd)
            except (OSError, ValueError):
                pass
        if polite and self.ws:
            try:
                conn.sock.send(self.framer.close())
            except OSError:
                pass
        conn.sock.close()

    def close_all(self):
        for conn in list(self.conns.values()):
            self.close(conn, polite=True)
        self.ready = []
        self.epoll.close()
