"""A Pomelo client on gevent, over raw TCP or WebSocket (PROTOCOL.md): for tests, bots, the load tool.

    with Client.connect("127.0.0.1", 3010, transport="ws", user={"token": "t"}) as client:
        body = client.request("connector.entryHandler.entry", {"uid": "a"})
        client.notify("chat.chatHandler.send", {"msg": "hi"})
        chat = client.wait_push("onChat", timeout=5)

One connection = one socket, one reader greenlet (decodes, answers requests, runs push handlers and
async callbacks), one writer greenlet (drains a list of whole packages with one `sendall` per
batch) and, when the server asks for heartbeats, one heartbeat greenlet. Nothing else blocks on
the socket, and no greenlet is started per request.
"""
import logging
import socket as stdlib_socket
import ssl as stdlib_ssl
import time
from collections import deque

import gevent
from gevent import getcurrent
from gevent import socket as gsocket
from gevent import ssl as gssl
from gevent.event import AsyncResult, Event
from gevent.hub import Waiter, get_hub

from zpomelo.errors import BodyError, ProtocolError, ZpomeloError
from zpomelo.netio import make_receiver
from zpomelo.protocol import handshake, message, package, websocket
from zpomelo.protocol.codec import ClientCodec

logger = logging.getLogger(__name__)

CLIENT_TYPE = "zpomelo-python"
CLIENT_VERSION = "0.1.0"
MAX_REQUEST_ID = (1 << 31) - 1
DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_PUSH_QUEUE = 10000
DEFAULT_MAX_QUEUED = 100000          # packages waiting for the writer before we give up
_RECV_SIZE = 65536
_MAX_UPGRADE_RESPONSE = 16384

_INITED, _WORKING, _CLOSED = "inited", "working", "closed"
_IN_READER = ("%s in a push handler or request_async callback would wait for the very greenlet "
              "that reads the answer: use request_async, or gevent.spawn the blocking work")
_monotonic = time.monotonic


class ClientError(ZpomeloError):
    """Base of the errors raised by zpomelo.client."""


class ConnectionClosed(ClientError):
    """The connection is closed (or closed while a request waited); `reason` says why."""

    def __init__(self, message, reason=None):
        super().__init__(message)
        self.reason = reason


class HandshakeError(ClientError):
    """The server refused the handshake: `code` 500 (bad handshake / hook failed) or 501 (old client)."""

    def __init__(self, code, body=None):
        hint = {500: "the server rejected the handshake (bad sys/user data, or its handshake hook failed)",
                501: "the server rejects this client type/version; upgrade the client"}.get(
                    code, "unexpected handshake reply")
        super().__init__("handshake refused with code %s: %s" % (code, hint))
        self.code = code
        self.body = body


class ClientTimeout(ClientError, TimeoutError):
    """A wait on the server (connect, handshake, push) passed its deadline."""


class RequestTimeout(ClientTimeout):
    """No response to a request before its timeout; `route` and `request_id` name it."""

    def __init__(self, route, request_id, timeout):
        super().__init__("no response to request %d %r within %.3g s (the server may be slow, "
                         "or the route may not answer)" % (request_id, route, timeout))
        self.route = route
        self.request_id = request_id
        self.timeout = timeout


class HandshakeCache:
    """What a server sent in its handshake (dictionary, protos and their versions), to reuse.

    Pass the same cache to every `Client.connect` to one cluster: the next handshake sends the
    cached versions and the server leaves out the dictionary and protos when they still match.
    """

    def __init__(self):
        self.dict_version = None
        self.dict_sys = None       # {"dict", "routeToCode", "codeToRoute", "dictVersion"} as received
        self.proto_version = None
        self.protos = None         # {"server", "client", "version"} as received

    def request_sys(self):
        """The version fields of the client's handshake sys."""
        sys = {"protoVersion": self.proto_version if self.proto_version is not None else 0}
        if self.dict_version is not None:
            sys["dictVersion"] = self.dict_version
        return sys

    def complete(self, sys):
        """Fill the reply's missing dict/protos from the cache and remember new ones; -> sys."""
        sys = dict(sys)
        if sys.get("useDict"):
            if "dict" in sys or "routeToCode" in sys:
                self.dict_sys = {key: sys[key] for key in ("dict", "routeToCode", "codeToRoute",
                                                           "dictVersion") if key in sys}
                self.dict_version = sys.get("dictVersion")
            elif self.dict_sys is not None:
                sys.update(self.dict_sys)
        if sys.get("useProto"):
            protos = sys.get("protos")
            if protos:
                self.protos = protos
                self.proto_version = protos.get("version")
            elif self.protos is not None:
                sys["protos"] = self.protos
        return sys


class _TcpFraming:
    """Raw TCP: the byte stream is the package stream."""

    peer_closed = None

    def __init__(self, max_body):
        self.feed = package.PackageDecoder(max_body).feed

    @staticmethod
    def wrap(packages):
        return packages[0] if len(packages) == 1 else b"".join(packages)


class _WsFraming:
    """WebSocket: one masked BINARY frame per package out; any number of packages per message in."""

    def __init__(self, max_body, send_control):
        # A message may hold several packages, each up to max_body, so only the package decoder
        # enforces the per-package limit; the frame limit just bounds memory.
        self._frames = websocket.FrameDecoder(max_payload=max(max_body + package.HEADER_SIZE,
                                                              1 << 20) * 4)
        self._packages = package.PackageDecoder(max_body)
        self._send_control = send_control
        self.peer_closed = None        # the reason, once a CLOSE frame arrived

    def feed(self, data):
        out = []
        for opcode, payload in self._frames.feed(data):
            if opcode == websocket.BINARY or opcode == websocket.TEXT:
                out.extend(self._packages.feed(payload))
            elif opcode == websocket.PING:
                self._send_control(websocket.encode_frame(payload, websocket.PONG, mask=True))
            elif opcode == websocket.CLOSE:
                # What arrived before the CLOSE still counts (a kick, a last response).
                code, reason = websocket.parse_close(payload)
                self.peer_closed = "the server closed the WebSocket (%s %s)" % (code, reason)
                break
        return out

    @staticmethod
    def wrap(packages):
        frame = websocket.encode_frame
        if len(packages) == 1:
            return frame(packages[0], mask=True)
        return b"".join([frame(p, mask=True) for p in packages])


class Client:
    """One Pomelo connection. Build it with `Client.connect(...)`; see the module docstring."""

    def __init__(self, host, port, transport="tcp", user=None, ssl=None, verify=True, path="/",
                 cache=None, request_timeout=DEFAULT_REQUEST_TIMEOUT, heartbeat_timeout=None,
                 max_body=package.MAX_BODY_LIMIT, push_queue_size=DEFAULT_PUSH_QUEUE,
                 max_queued=DEFAULT_MAX_QUEUED):
        if transport not in ("tcp", "ws"):
            raise ValueError("transport must be 'tcp' or 'ws', got %r" % (transport,))
        self.host = host
        self.port = port
        self.transport = transport
        self.user = user
        self.ssl = ssl
        self.verify = verify
        self.path = path
        self.cache = cache if cache is not None else HandshakeCache()
        self.request_timeout = request_timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.max_body = max_body
        self.max_queued = max_queued

        self.handshake_sys = None      # the server's handshake reply sys (dict/protos filled in)
        self.handshake_user = None     # the server's handshake reply user data, if any
        self.heartbeat = None          # seconds, from the handshake
        self.kicked_reason = None
        self.close_reason = None
        self.closed = Event()
        self.pushes_dropped = 0        # pushes pushed out of the full wait_push queue
        self.bad_messages = 0          # DATA messages that did not decode (dropped or failed)

        self._codec = ClientCodec()
        self._state = _INITED
        self._sock = None
        self._os_sock = None           # the non-blocking OS socket under a plain (non-TLS) socket
        self._writing = False          # the writer is inside sendall: direct writes must wait
        self._unsent = None            # framed bytes a direct write left for the writer
        self._framing = None
        self._last_id = 0
        # id -> (route, Waiter of a blocked request() | None, callback | None, deadline, timeout)
        self._pending = {}
        self._out = []                 # whole packages waiting for the writer
        self._control = []             # WebSocket control frames, already framed
        self._wake_writer = Event()
        self._closing = False
        self._drained = Event()
        self._leftover = b""
        self._handshake_reply = AsyncResult()
        self._handlers = {}            # push route -> [fn(body)]
        self._kick_handlers = []
        self._close_handlers = []
        self._inbox = deque(maxlen=push_queue_size)   # (route, body) of pushes without a handler
        self._push_arrived = Event()
        self._last_recv = 0.0
        self._reader = self._writer = self._heartbeater = self._sweeper = None
        # The sweeper's tick; infinite while it idles (nothing pending), so the one comparison
        # `timeout < self._sweep_interval` per request both sets the tick and wakes it.
        self._sweep_interval = float("inf")
        self._sweep_tick = float("inf")
        self._sweep_wake = Event()
        self._hub = get_hub()
        self._run_soon = self._hub.loop.run_callback   # wakes a Waiter from the hub

    # ---- connecting --------------------------------------------------------------------------

    @classmethod
    def connect(cls, host, port, transport="tcp", user=None, timeout=5, ssl=None, path="/",
                **options):
        """Open a connection and complete the handshake (raises HandshakeError, ClientTimeout,
        ConnectionClosed or OSError, ssl.SSLError included). `ssl`: None/False for plain, True
        for TLS (certificate and host name checked unless `verify=False`), or a
        gevent.ssl.SSLContext. Other options: see `Client.__init__`."""
        client = cls(host, port, transport=transport, user=user, ssl=ssl, path=path, **options)
        client.open(timeout)
        return client

    def open(self, timeout=5):
        """Connect and handshake (see `connect`); on any failure the client ends closed."""
        if self._state is not _INITED or self._sock is not None:
            raise RuntimeError("a Client opens once; make a new one to reconnect")
        deadline = _monotonic() + timeout
        try:
            self._sock = self._open_socket(timeout, deadline)
        except gsocket.timeout:
            self._finish("connect timeout")
            raise ClientTimeout("no connection to %s:%s within %s s (TCP connect, TLS handshake "
                                "or WebSocket upgrade)" % (self.host, self.port, timeout)) from None
        except BaseException as exc:
            self._finish("connect failed: %s" % (exc,))
            raise
        self._last_recv = _monotonic()
        if not self.ssl:
            self._os_sock = getattr(self._sock, "_sock", None)
        self._reader = gevent.spawn(self._read_loop)
        self._writer = gevent.spawn(self._write_loop)
        sys = {"type": CLIENT_TYPE, "version": CLIENT_VERSION}
        sys.update(self.cache.request_sys())
        self._enqueue(handshake.encode_client_request(sys, self.user))
        self._handshake_reply.wait(max(0.0, deadline - _monotonic()))
        if not self._handshake_reply.ready():
            self._finish("no handshake reply within %s s" % timeout)
            raise ClientTimeout("no handshake reply from %s:%s within %s s: is it a Pomelo "
                                "frontend's clientPort?" % (self.host, self.port, timeout))
        self._handshake_reply.get()   # raises HandshakeError / ConnectionClosed
        return self

    def _open_socket(self, timeout, deadline):
        sock = gsocket.create_connection((self.host, self.port), timeout=timeout)
        try:
            sock.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY, 1)
            if self.ssl:
                sock.settimeout(max(0.001, deadline - _monotonic()))
                sock = self._ssl_context().wrap_socket(sock, server_hostname=self.host)
            leftover = b""
            if self.transport == "ws":
                sock.settimeout(max(0.001, deadline - _monotonic()))
                leftover = self._upgrade(sock)
                self._framing = _WsFraming(self.max_body, self._send_now)
            else:
                self._framing = _TcpFraming(self.max_body)
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        self._leftover = leftover
        return sock

    def _ssl_context(self):
        if isinstance(self.ssl, gssl.SSLContext):
            return self.ssl
        if isinstance(self.ssl, stdlib_ssl.SSLContext):
            # Its handshake would block the whole hub (gevent.ssl.create_default_context()
            # also returns one of these).
            raise TypeError("ssl= needs a gevent.ssl.SSLContext, not the standard library's; "
                            "build it with gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_CLIENT)")
        context = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)
        if self.verify:
            context.load_default_certs()
        else:
            context.check_hostname = False
            context.verify_mode = gssl.CERT_NONE
        return context

    def _upgrade(self, sock):
        """The WebSocket HTTP upgrade; returns bytes the server sent after its response head."""
        host = self.host if self.port in (80, 443) else "%s:%s" % (self.host, self.port)
        request, key = websocket.client_request(host, self.path)
        sock.sendall(request)
        head = b""
        while websocket.HEADER_END not in head:
            if len(head) > _MAX_UPGRADE_RESPONSE:
                raise ProtocolError("WebSocket upgrade response head longer than %d bytes"
                                    % _MAX_UPGRADE_RESPONSE)
            data = sock.recv(4096)
            if not data:
                raise ConnectionClosed("%s:%s closed the connection during the WebSocket upgrade"
                                       % (self.host, self.port))
            head += data
        end = head.index(websocket.HEADER_END) + len(websocket.HEADER_END)
        websocket.check_upgrade_response(head[:end], key)
        return head[end:]

    # ---- public API --------------------------------------------------------------------------

    def request(self, route, body=None, timeout=None):
        """Send a request and wait for its response body (a dict, also for error codes).

        Raises RequestTimeout, ConnectionClosed, or the codec's ProtocolError (unencodable body,
        bad route; also BodyError when the response body does not decode)."""
        if timeout is None:
            timeout = self.request_timeout
        if getcurrent() is self._reader:
            raise RuntimeError(_IN_READER % "request()")
        rid = self._last_id + 1
        if rid > MAX_REQUEST_ID:
            rid = 1                      # ids wrap within 1..2^31-1; 0 would mean "notify"
        self._last_id = rid
        self._send(self._codec.encode_request(rid, route, {} if body is None else body))
        # A bare Waiter woken from the hub, and the sweeper for the deadline: no Event and no
        # timer per request (a third of the cost of AsyncResult.wait(timeout)).
        waiter = Waiter(self._hub)
        if timeout:
            self._pending[rid] = (route, waiter, None, _monotonic() + timeout, timeout)
            if timeout < self._sweep_interval:
                self._start_sweeper(timeout)
        else:
            self._pending[rid] = (route, waiter, None, None, None)
        try:
            return waiter.get()
        except BaseException:          # timeout, close, or the caller's own Timeout / kill
            if self._pending.pop(rid, None) is not None:
                self._codec.forget(rid)
            raise

    def request_async(self, route, body, callback, timeout=None):
        """Send a request without waiting; returns its id. `callback(error, body)` runs once:
        error None with the body, or RequestTimeout / ConnectionClosed / BodyError with None.

        Callbacks run in the client's own greenlets (the reader; the timeout sweeper), so they
        must not block; they may call request_async and notify. No greenlet or timer is made
        per request: one sweeper per connection checks deadlines every `timeout`/8 (5 ms to
        0.5 s), so a timeout fires up to that much late.
        """
        if timeout is None:
            timeout = self.request_timeout
        rid = self._last_id + 1
        if rid > MAX_REQUEST_ID:
            rid = 1                      # ids wrap within 1..2^31-1; 0 would mean "notify"
        self._last_id = rid
        self._send(self._codec.encode_request(rid, route, {} if body is None else body))
        if timeout:
            self._pending[rid] = (route, None, callback, _monotonic() + timeout, timeout)
            if timeout < self._sweep_interval:
                self._start_sweeper(timeout)
        else:
            self._pending[rid] = (route, None, callback, None, None)
        return rid

    def notify(self, route, body=None):
        """Send a notify (no response)."""
        self._send(self._codec.encode_notify(route, {} if body is None else body))

    def on(self, route, fn):
        """Call `fn(body)` for every push on `route`; such pushes are not queued for `wait_push`.

        Handlers run in the reader greenlet: they must not block (no `request`/`wait_push`)."""
        self._handlers.setdefault(route, []).append(fn)

    def on_kick(self, fn):
        """Call `fn(reason)` when the server kicks this connection."""
        self._kick_handlers.append(fn)

    def on_close(self, fn):
        """Call `fn(reason)` once when the connection closes, for any reason."""
        self._close_handlers.append(fn)

    def wait_push(self, route, timeout=5):
        """The body of the oldest queued push on `route`, waiting up to `timeout` seconds for one."""
        return self._wait_push(route, timeout)[1]

    def next_push(self, timeout=5):
        """(route, body) of the oldest queued push on any route."""
        return self._wait_push(None, timeout)

    @property
    def pending_count(self):
        return len(self._pending)

    @property
    def is_open(self):
        return self._state is _WORKING

    def close(self, timeout=1.0):
        """Flush what is queued (up to `timeout`), close the socket, fail pending requests."""
        if self._state is _CLOSED:
            return
        writer = self._writer
        if self.transport == "ws":
            self._send_now(websocket.encode_frame(
                websocket.CLOSE_NORMAL.to_bytes(2, "big"), websocket.CLOSE, mask=True))
        if writer is not None and not writer.dead and writer is not gevent.getcurrent():
            self._closing = True
            self._wake_writer.set()
            self._drained.wait(timeout)
        self._finish("closed by the client")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<Client %s %s:%s %s>" % (self.transport, self.host, self.port, self._state)

    # ---- sending -----------------------------------------------------------------------------

    def _send(self, pkg):
        """Queue a whole package for the writer (the hot path: no greenlet switch here)."""
        if self._state is not _WORKING:
            if self._state is _INITED:
                raise ConnectionClosed("not connected yet: call open() (or use Client.connect)")
            raise ConnectionClosed("connection to %s:%s is closed (%s); connect again"
                                   % (self.host, self.port, self.close_reason), self.close_reason)
        out = self._out
        if not out and self._os_sock is not None and not self._writing and self._unsent is None:
            self._write_now(self._framing.wrap((pkg,)))
            return
        out.append(pkg)
        if len(out) == 1:
            self._wake_writer.set()
        elif len(out) > self.max_queued:
            self._overflow()

    def _write_now(self, data):
        """The writer is idle: write straight to the non-blocking OS socket (no greenlet
        switch); whatever the kernel does not take now is left to the writer."""
        try:
            sent = self._os_sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._finish("send failed: %s" % exc)
            raise ConnectionClosed("connection to %s:%s closed: send failed: %s"
                                   % (self.host, self.port, exc), self.close_reason) from None
        if sent < len(data):
            self._unsent = data[sent:]
            self._wake_writer.set()

    def _enqueue(self, pkg):
        """Queue a package in any state but closed (handshake, ACK, heartbeats)."""
        out = self._out
        out.append(pkg)
        if len(out) == 1:
            self._wake_writer.set()
        elif len(out) > self.max_queued:
            self._overflow()

    def _overflow(self):
        reason = "more than %d packages queued: the server is not reading" % self.max_queued
        self._finish(reason)
        raise ConnectionClosed("connection to %s:%s closed: %s" % (self.host, self.port, reason),
                               reason)

    def _send_now(self, frame):
        """Queue bytes already framed for the transport (WebSocket control frames)."""
        if self._state is not _CLOSED:
            self._control.append(frame)
            self._wake_writer.set()

    def _write_loop(self):
        wake = self._wake_writer
        sock = self._sock
        wrap = self._framing.wrap
        try:
            while self._state is not _CLOSED:
                wake.wait()
                wake.clear()
                self._writing = True
                if self._unsent is not None:
                    unsent, self._unsent = self._unsent, None
                    sock.sendall(unsent)
                batch = self._out
                if batch:
                    self._out = []
                    sock.sendall(wrap(batch))
                if self._control:
                    control, self._control = self._control, []
                    sock.sendall(b"".join(control))
                self._writing = False
                if self._closing and not self._out:
                    self._drained.set()
                    return
        except OSError as exc:
            self._finish("send failed: %s" % exc)

    # ---- receiving ---------------------------------------------------------------------------

    def _read_loop(self):
        framing = self._framing
        feed = framing.feed
        handle = self._handle_packages
        reason = "the server closed the connection"
        try:
            data = self._leftover
            self._leftover = None
            recv = make_receiver(self._sock)
            while self._state is not _CLOSED:
                if data:
                    handle(feed(data))
                    if framing.peer_closed:
                        reason = framing.peer_closed
                        break
                data = recv(_RECV_SIZE)
                if not data:
                    break
                self._last_recv = _monotonic()
        except ProtocolError as exc:
            reason = "protocol error from the server: %s" % exc
            logger.warning("%r: %s", self, reason)
        except OSError as exc:
            reason = "receive failed: %s" % exc
        self._finish(reason)

    def _handle_packages(self, packages):
        for ptype, body in packages:
            if ptype == package.DATA:
                if self._state is _WORKING:
                    self._on_message(body)
            elif ptype == package.HEARTBEAT:
                pass                      # _last_recv already moved; the server answers ours
            elif ptype == package.HANDSHAKE:
                if self._state is _INITED:
                    self._on_handshake(body)
            elif ptype == package.KICK:
                self._on_kick(body)
            else:
                logger.debug("%r: ignoring a package of type %d", self, ptype)
            if self._state is _CLOSED:
                return

    def _on_message(self, data):
        try:
            mtype, mid, route, body = self._codec.decode(data)
        except ProtocolError as exc:
            self._on_bad_message(exc)
            return
        if mtype == message.RESPONSE:
            entry = self._pending.pop(mid, None)
            if entry is None:
                logger.debug("%r: response to unknown or timed-out request %d", self, mid)
            elif entry[1] is not None:
                self._run_soon(entry[1].switch, body)
            else:
                self._run_callback(entry, None, body)
        elif mtype == message.PUSH:
            handlers = self._handlers.get(route)
            if handlers:
                for fn in handlers:
                    try:
                        fn(body)
                    except Exception:
                        logger.exception("%r: push handler for %r failed", self, route)
            else:
                inbox = self._inbox
                if len(inbox) == inbox.maxlen:
                    self.pushes_dropped += 1
                inbox.append((route, body))
                self._push_arrived.set()
        else:
            logger.debug("%r: ignoring a message of type %d from the server", self, mtype)

    def _on_bad_message(self, exc):
        """A DATA package whose message does not decode. The package framing is intact, so only
        this message is lost: its request fails with the error, anything else is dropped."""
        self.bad_messages += 1
        msg_id = exc.msg_id if isinstance(exc, BodyError) else 0
        entry = self._pending.pop(msg_id, None) if msg_id else None
        if entry is None:
            logger.warning("%r: dropping a message that does not decode: %s", self, exc)
        else:
            self._fail(entry, exc)

    def _fail(self, entry, error):
        """Fail one pending request: raise in its blocked request(), or call its callback."""
        if entry[1] is not None:
            self._run_soon(entry[1].throw, error)
        else:
            self._run_callback(entry, error, None)

    def _run_callback(self, entry, error, body):
        try:
            entry[2](error, body)
        except Exception:
            logger.exception("%r: callback of request %r failed", self, entry[0])

    def _on_handshake(self, body):
        reply = handshake.parse_response(body)
        code = reply.get("code")
        if code != 200:
            self._handshake_reply.set_exception(HandshakeError(code, reply))
            self._finish("handshake refused with code %s" % code)
            return
        sys = self.cache.complete(reply.get("sys") or {})
        self._codec.apply_handshake(sys)
        self.handshake_sys = sys
        self.handshake_user = reply.get("user")
        self._state = _WORKING
        self._enqueue(package.HANDSHAKE_ACK_PACKAGE)
        heartbeat = sys.get("heartbeat")
        if isinstance(heartbeat, (int, float)) and heartbeat > 0:
            self.heartbeat = heartbeat
            timeout = self.heartbeat_timeout or 2 * heartbeat
            self._heartbeater = gevent.spawn(self._heartbeat_loop, heartbeat, timeout)
        self._handshake_reply.set(reply)

    def _on_kick(self, body):
        try:
            self.kicked_reason = handshake.parse_kick(body)
        except ProtocolError:
            self.kicked_reason = bytes(body).decode("utf-8", "replace")
        for fn in self._kick_handlers:
            try:
                fn(self.kicked_reason)
            except Exception:
                logger.exception("%r: kick handler failed", self)
        self._finish("kicked by the server: %s" % (self.kicked_reason,))

    # ---- timers ------------------------------------------------------------------------------

    def _heartbeat_loop(self, interval, timeout):
        next_beat = _monotonic() + interval
        while self._state is _WORKING:
            now = _monotonic()
            silent = now - self._last_recv
            if silent >= timeout:
                self._finish("heartbeat timeout: nothing from the server for %.3g s" % silent)
                return
            if now >= next_beat:
                try:
                    self._enqueue(package.HEARTBEAT_PACKAGE)
                except ConnectionClosed:
                    return
                next_beat = now + interval
            gevent.sleep(max(0.0, min(next_beat, self._last_recv + timeout) - now))

    def _start_sweeper(self, timeout):
        self._sweep_tick = min(self._sweep_tick, 0.5, max(0.005, timeout / 8.0))
        self._sweep_interval = self._sweep_tick
        if self._sweeper is None:
            if self._state is not _CLOSED:
                self._sweeper = gevent.spawn(self._sweep_loop)
        else:
            self._sweep_wake.set()

    def _sweep_loop(self):
        """Fail requests past their deadline; one scan of the (small) pending table per tick."""
        while self._state is not _CLOSED:
            if not self._pending:
                self._sweep_interval = float("inf")
                self._sweep_wake.clear()
                self._sweep_wake.wait()
                continue
            gevent.sleep(self._sweep_interval)
            now = _monotonic()
            pending = self._pending
            expired = [rid for rid, entry in pending.items()
                       if entry[3] is not None and entry[3] <= now]
            for rid in expired:
                entry = pending.pop(rid, None)
                if entry is None or self._state is _CLOSED:   # a callback may have closed us
                    break
                self._codec.forget(rid)
                self._fail(entry, RequestTimeout(entry[0], rid, entry[4]))

    # ---- pushes ------------------------------------------------------------------------------

    def _wait_push(self, route, timeout):
        if getcurrent() is self._reader:
            raise RuntimeError(_IN_READER % "wait_push()")
        deadline = _monotonic() + timeout
        inbox = self._inbox
        while True:
            for i, item in enumerate(inbox):
                if route is None or item[0] == route:
                    del inbox[i]
                    return item
            if self._state is _CLOSED:
                raise ConnectionClosed("no push %r queued and the connection is closed (%s)"
                                       % (route, self.close_reason), self.close_reason)
            remaining = deadline - _monotonic()
            if remaining <= 0:
                raise ClientTimeout("no push %s within %s s" % (repr(route) if route else "", timeout))
            self._push_arrived.clear()
            self._push_arrived.wait(remaining)

    # ---- closing -----------------------------------------------------------------------------

    def _finish(self, reason):
        """Close for `reason` (idempotent): fail everything pending, stop the greenlets."""
        if self._state is _CLOSED:
            return
        self._state = _CLOSED
        self.close_reason = reason
        logger.debug("%r: closed: %s", self, reason)
        text = "connection to %s:%s closed: %s" % (self.host, self.port, reason)
        if not self._handshake_reply.ready():
            self._handshake_reply.set_exception(ConnectionClosed(text, reason))
        pending, self._pending = self._pending, {}
        for entry in pending.values():   # one exception each: they get separate tracebacks
            self._fail(entry, ConnectionClosed(text, reason))
        self._out = []
        self._wake_writer.set()
        self._push_arrived.set()
        current = gevent.getcurrent()
        for greenlet in (self._reader, self._writer, self._heartbeater, self._sweeper):
            if greenlet is not None and greenlet is not current:
                greenlet.kill(block=False)
        if self._sock is not None:
            self._sock.close()
        self.closed.set()
        for fn in self._close_handlers:
            try:
                fn(reason)
            except Exception:
                logger.exception("%r: close handler failed", self)
