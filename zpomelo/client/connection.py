"""Client: one Pomelo connection's protocol side: handshake, requests, pushes, heartbeats.

Bytes, sockets and the writer live in zpomelo.client.transport; this module speaks Pomelo over
it (what arrives is handled in incoming.py, reconnecting and resuming in resume.py). One
connection = one socket, one reader greenlet (decodes, answers requests, runs push handlers and
async callbacks), a writer greenlet only while the socket cannot take a write at once, and, when
the server asks for heartbeats, one heartbeat greenlet. Nothing else blocks on
the socket, and no greenlet is started per request.
"""
import logging
import time

import gevent
from gevent import getcurrent
from gevent import socket as gsocket
from gevent.event import AsyncResult, Event
from gevent.hub import Waiter, get_hub

from zpomelo.client.cache import HandshakeCache
from zpomelo.client.errors import ClientTimeout, ConnectionClosed
from zpomelo.client.incoming import Incoming
from zpomelo.client.pushes import PushInbox
from zpomelo.client.requests import PendingRequests
from zpomelo.client.resume import (
    _CLOSED, _INITED, _RESUMING, _WORKING, Reconnecting, ResumeTicket)
from zpomelo.client.transport import Transport
from zpomelo.protocol import handshake, package
from zpomelo.protocol.codec import ClientCodec

logger = logging.getLogger(__name__)

CLIENT_TYPE = "zpomelo-python"
CLIENT_VERSION = "0.1.0"
DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_PUSH_QUEUE = 10000
DEFAULT_MAX_QUEUED = 100000          # packages waiting for the writer before we give up
SEND_FAILURE_GRACE = 1.0             # seconds the reader has, after a failed send, to read the end

_IN_READER = ("%s in a push handler or request_async callback would wait for the very greenlet "
              "that reads the answer: use request_async, or gevent.spawn the blocking work")
_monotonic = time.monotonic


class Client(Incoming, Reconnecting):
    """One Pomelo connection. Build it with `Client.connect(...)`; see the module docstring."""

    def __init__(self, host, port, transport="tcp", user=None, ssl=None, verify=True, path="/",
                 cache=None, request_timeout=DEFAULT_REQUEST_TIMEOUT, heartbeat_timeout=None,
                 max_body=package.MAX_BODY_LIMIT, push_queue_size=DEFAULT_PUSH_QUEUE,
                 max_queued=DEFAULT_MAX_QUEUED, resume=False, reconnect_for=None):
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
        self.bad_messages = 0          # DATA messages that did not decode (dropped or failed)
        # Session resume (docs/protocol.md): a lost connection is reconnected with backoff for
        # `reconnect_for` seconds (default: the server's window + 10 s) and the session resumed
        self.resume = ResumeTicket() if resume else None
        self.reconnect_for = reconnect_for
        self.reconnects = 0            # connections made after a loss (resumed or fresh)
        self.connected = Event()       # set while the connection works (cleared while resuming)
        self._leaving = False          # close() was called: no resume
        self._reconnecting = False     # inside an attempt of the reconnect loop
        self._resume_handlers = {"drop": [], "resumed": [], "session_lost": []}

        self._codec = ClientCodec()
        self._state = _INITED
        self._connection = None        # the Transport, once connected
        self._write = None             # its write(pkg) -> bool
        self._pending = PendingRequests(self._codec, self)
        self._handshake_reply = AsyncResult()
        self._pushes = PushInbox(push_queue_size)
        self._kick_handlers = []
        self._close_handlers = []
        self._reader = self._heartbeater = self._reconnector = None
        self._send_failure = None      # why the last send failed, while the reader reads on
        self._hub = get_hub()

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
        if self._state is not _INITED or self._connection is not None:
            raise RuntimeError("a Client opens once; make a new one to reconnect")
        self._open_once(timeout)
        return self

    def _open_once(self, timeout):
        deadline = _monotonic() + timeout
        try:
            self._connection = Transport.connect(
                self.host, self.port, self.transport, self.ssl, self.verify, self.path, timeout,
                self.max_body, self.max_queued, self._on_send_failed, self._on_overflow)
        except gsocket.timeout:
            self._finish("connect timeout")
            raise ClientTimeout("no connection to %s:%s within %s s (TCP connect, TLS handshake "
                                "or WebSocket upgrade)" % (self.host, self.port, timeout)) from None
        except BaseException as exc:
            self._finish("connect failed: %s" % (exc,))
            raise
        self._write = self._connection.write
        self._send_failure = None
        self._reader = gevent.spawn(self._read_loop)
        sys = {"type": CLIENT_TYPE, "version": CLIENT_VERSION}
        sys.update(self.cache.request_sys())
        if self.resume is not None:
            sys["resume"] = self.resume.request()
        self._enqueue(handshake.encode_client_request(sys, self.user))
        self._handshake_reply.wait(max(0.0, deadline - _monotonic()))
        if not self._handshake_reply.ready():
            self._finish("no handshake reply within %s s" % timeout)
            raise ClientTimeout("no handshake reply from %s:%s within %s s: is it a Pomelo "
                                "frontend's clientPort?" % (self.host, self.port, timeout))
        self._handshake_reply.get()   # raises HandshakeError / ConnectionClosed

    # ---- public API --------------------------------------------------------------------------

    def request(self, route, body=None, timeout=None):
        """Send a request and wait for its response body (a dict, also for error codes).

        Raises RequestTimeout, ConnectionClosed, or the codec's ProtocolError (unencodable body,
        bad route; also BodyError when the response body does not decode)."""
        if timeout is None:
            timeout = self.request_timeout
        if getcurrent() is self._reader:
            raise RuntimeError(_IN_READER % "request()")
        pending = self._pending
        rid = pending.next_id()
        self._send(self._codec.encode_request(rid, route, {} if body is None else body))
        # A bare Waiter woken from the hub, and the sweeper for the deadline: no Event and no
        # timer per request (a third of the cost of AsyncResult.wait(timeout)).
        waiter = Waiter(self._hub)
        pending.add(rid, route, waiter, None, timeout)
        try:
            return waiter.get()
        except BaseException:          # timeout, close, or the caller's own Timeout / kill
            pending.abandon(rid)
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
        pending = self._pending
        rid = pending.next_id()
        self._send(self._codec.encode_request(rid, route, {} if body is None else body))
        pending.add(rid, route, None, callback, timeout)
        return rid

    def notify(self, route, body=None):
        """Send a notify (no response)."""
        self._send(self._codec.encode_notify(route, {} if body is None else body))

    def on(self, route, fn):
        """Call `fn(body)` for every push on `route`; such pushes are not queued for `wait_push`.

        Handlers run in the reader greenlet: they must not block (no `request`/`wait_push`)."""
        self._pushes.on(route, fn)

    def on_kick(self, fn):
        """Call `fn(reason)` when the server kicks this connection."""
        self._kick_handlers.append(fn)

    def on_close(self, fn):
        """Call `fn(reason)` once when the connection closes, for any reason (a resuming client:
        when it closes for good, not at a loss it reconnects from)."""
        self._close_handlers.append(fn)

    def wait_push(self, route, timeout=5):
        """The body of the oldest queued push on `route`, waiting up to `timeout` seconds for one."""
        return self._wait_push(route, timeout)[1]

    def next_push(self, timeout=5):
        """(route, body) of the oldest queued push on any route."""
        return self._wait_push(None, timeout)

    @property
    def pushes_dropped(self):
        """Pushes pushed out of the full wait_push queue."""
        return self._pushes.dropped

    @property
    def pending_count(self):
        return len(self._pending)

    @property
    def is_open(self):
        return self._state is _WORKING

    def close(self, timeout=1.0):
        """Flush what is queued (up to `timeout`), close the socket, fail pending requests.

        A resuming client says goodbye first (a KICK package), so the server ends the session
        at once instead of holding it for a resume."""
        if self._state is _CLOSED:
            return
        self._leaving = True
        self._reconnecting = False
        if self._connection is not None:
            if self._state is _WORKING and self.resume is not None and self.resume.token:
                self._write(package.encode(package.KICK, b""))
            self._connection.close_gracefully(timeout)
        self._finish("closed by the client")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<Client %s %s:%s %s>" % (self.transport, self.host, self.port, self._state)

    # ---- sending -----------------------------------------------------------------------------

    def _send(self, pkg):
        """Write or queue a whole package (the hot path: no greenlet switch here)."""
        if self._state is not _WORKING:
            if self._state is _RESUMING or self._reconnecting:
                raise ConnectionClosed("connection to %s:%s lost (%s); reconnecting: wait for "
                                       "wait_connected()" % (self.host, self.port,
                                                             self.close_reason), self.close_reason)
            if self._state is _INITED:
                raise ConnectionClosed("not connected yet: call open() (or use Client.connect)")
            raise ConnectionClosed("connection to %s:%s is closed (%s); connect again"
                                   % (self.host, self.port, self.close_reason), self.close_reason)
        if not self._write(pkg):
            self._raise_closed()

    def _enqueue(self, pkg):
        """Write or queue a package in any state but closed (handshake, ACK, heartbeats)."""
        if not self._write(pkg):
            self._raise_closed()

    def _raise_closed(self):
        reason = self._send_failure or self.close_reason   # (a resumed connection's is None)
        raise ConnectionClosed("connection to %s:%s closed: %s" % (self.host, self.port, reason),
                               reason)

    def _on_send_failed(self, reason):
        """The socket writer's error callback: a send failed, so the connection is gone. The
        server may have said why just before it closed (a KICK not read yet: what arrived stays
        readable after the peer's reset), so the reader reads on and ends the connection itself,
        with the kick's reason if there was one; if it has not within SEND_FAILURE_GRACE
        seconds, this reason ends it."""
        reader = self._reader
        if reader is None or reader.dead or reader is gevent.getcurrent():
            self._finish(reason)
            return
        self._send_failure = reason
        gevent.spawn_later(SEND_FAILURE_GRACE, self._finish_if_current, self._connection, reason)

    def _finish_if_current(self, connection, reason):
        if self._connection is connection:      # not a connection a resume has made since
            self._finish(reason)

    def _on_overflow(self):
        self._finish("more than %d packages queued: the server is not reading" % self.max_queued)

    # ---- pushes ------------------------------------------------------------------------------

    def _wait_push(self, route, timeout):
        if getcurrent() is self._reader:
            raise RuntimeError(_IN_READER % "wait_push()")
        return self._pushes.wait(route, timeout, self._closed_reason)

    def _closed_reason(self):
        return self.close_reason if self._state is _CLOSED else None

    # ---- closing -----------------------------------------------------------------------------

    def _finish(self, reason):
        """Close for `reason` (idempotent): fail everything pending, stop the greenlets.

        A resuming client whose connection was lost (not closed by us, not kicked) reconnects
        instead; a failed reconnect attempt only ends that attempt."""
        if self._state is _CLOSED:
            return
        if self._reconnecting:
            self._end_attempt(reason)
            return
        if (self._state is _WORKING and self.resume is not None and self.resume.token
                and not self._leaving and self.kicked_reason is None):
            self._lose(reason)
            return
        self._state = _CLOSED
        self._reconnecting = False
        self.connected.clear()
        self.close_reason = reason
        logger.debug("%r: closed: %s", self, reason)
        text = "connection to %s:%s closed: %s" % (self.host, self.port, reason)
        if not self._handshake_reply.ready():
            self._handshake_reply.set_exception(ConnectionClosed(text, reason))
        # One exception each: they get separate tracebacks.
        self._pending.fail_all(lambda: ConnectionClosed(text, reason))
        self._pushes.wake()
        current = gevent.getcurrent()
        for greenlet in (self._reader, self._heartbeater, self._reconnector):
            if greenlet is not None and greenlet is not current:
                greenlet.kill(block=False)
        if self._connection is not None:
            self._connection.close()
        self.closed.set()
        for fn in self._close_handlers:
            try:
                fn(reason)
            except Exception:
                logger.exception("%r: close handler failed", self)
