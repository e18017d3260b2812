"""Connector: one listening port for raw TCP and WebSocket clients, optionally under TLS.

The first bytes of a connection decide its transport: an HTTP method (GET, POST, PUT, DELETE,
HEAD) means a WebSocket upgrade, anything else raw Pomelo packages. A package's type byte is 1..5,
so the first byte alone tells them apart; the bytes read while sniffing are handed on, never
re-read (MSG_PEEK does not work inside TLS).

Accepting runs in the hub (no greenlet per socket): a new socket waits for its first bytes on
its read watcher, and a worker greenlet (connector.workers) sniffs it, reads a WebSocket upgrade
and starts the Connection, which then holds no greenlet while idle (connector.conn).
"""
import itertools
import logging
import socket
from time import monotonic

import gevent
from gevent import getcurrent
from gevent import ssl as gevent_ssl
from gevent.server import StreamServer

from zpomelo.connector import badinput, ratelimit
from zpomelo.connector.conn import RECV_SIZE, HandshakeTimeout
from zpomelo.connector.tcp import TcpConnection
from zpomelo.connector.workers import Workers
from zpomelo.connector.ws import WsConnection, accept_upgrade
from zpomelo.errors import ConfigError

logger = logging.getLogger(__name__)

# First bytes of GET, POST, PUT, DELETE, HEAD: never a package type byte (1..5).
_HTTP_FIRST_BYTES = frozenset(b"GPDH")


def make_ssl_context(ssl_config):
    """A server-side gevent SSLContext from {"certfile", "keyfile"} (or an existing context)."""
    if ssl_config is None:
        return None
    if isinstance(ssl_config, gevent_ssl.SSLContext):
        return ssl_config
    if not isinstance(ssl_config, dict):
        raise ConfigError("ssl must be a dict with certfile/keyfile or a gevent.ssl.SSLContext, "
                          "got %r" % type(ssl_config).__name__, field="ssl")
    context = gevent_ssl.SSLContext(gevent_ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(ssl_config["certfile"], ssl_config.get("keyfile"))
    except (OSError, gevent_ssl.SSLError) as exc:
        raise ConfigError("cannot load the TLS certificate %r / key %r: %s"
                          % (ssl_config.get("certfile"), ssl_config.get("keyfile"), exc),
                          field="ssl")
    return context


class Connector:
    """The client listener of one frontend.

    ``frontend`` is duck-typed (INTERNALS.md "connector/"): ``connector_config``,
    ``on_connect(conn) -> bool``, ``on_handshake(conn, sys, user) -> (code, user)``,
    ``on_request(conn, id, route, body)``, ``on_close(conn, reason)``.
    ``connections`` maps sid -> Connection (transport known, not yet closed); ``pending`` counts
    sockets still being sniffed / upgraded; ``count`` is their sum. ``bad_input`` counts bad
    input from clients by kind (``bad_input.counts``) and logs it rate-limited.
    """

    def __init__(self, frontend, host="0.0.0.0", port=0):
        self.frontend = frontend
        self.config = frontend.connector_config
        self.host = host
        self.port = port
        self.connections = {}
        self._sniffing = set()  # _Sniffing sockets whose transport is not known yet
        self._sids = itertools.count(1)
        self._ssl_context = make_ssl_context(self.config.ssl)
        self._server = None
        self.workers = None     # made in bind(): its hub is the serving thread's
        self.bad_input = badinput.BadInputLog("connector %s:%s" % (host, port))
        # messages refused by the per-connection rate limits, by kind, and connections kicked
        self.rate_limited = {ratelimit.REQUESTS: 0, ratelimit.BYTES: 0, ratelimit.TOO_BIG: 0,
                             ratelimit.KICKED: 0}
        # addresses kicked for flooding lately: their new connections get no fresh burst
        self.recent_kicks = ratelimit.KickMemory(self.config.rate_limits.kick_window)
        # a frontend that forwards request bodies untouched (FrontendService) gets JSON request
        # bodies undecoded, as codec.RawBody (ServerCodec.decode_lazy)
        self.lazy_bodies = getattr(frontend, "lazy_bodies", False)
        # the common handshake reply, encoded once per codec.handshake_sys_key (Connection)
        self.handshake_replies = {}

    @property
    def pending(self):
        return len(self._sniffing)

    @property
    def count(self):
        return len(self.connections) + len(self._sniffing)

    def bind(self):
        """Bind and listen without accepting yet (clients wait in the backlog); sets ``.port``."""
        if self._server is not None:
            return self
        self.workers = Workers()
        self._server = _Listener((self.host, self.port), self._accept,
                                 backlog=self.config.backlog, spawn=None)
        self._server.init_socket()
        self.port = self._server.server_port
        self.bad_input.name = "connector %s:%s" % (self.host, self.port)
        return self

    def start(self):
        """Bind if needed and start accepting; ``.port`` holds the bound port afterwards."""
        if self._server is not None and self._server.started:
            raise RuntimeError("connector already started")
        self.bind()
        self._server.start()
        logger.info("connector listening on %s:%s (tcp + websocket%s)", self.host, self.port,
                    ", tls" if self._ssl_context else "")
        return self

    def stop_accepting(self):
        """Close the listening socket; established connections keep working."""
        if self._server is not None:
            self._server.close()

    def stop(self, timeout=5.0):
        """Stop accepting, close every connection (flushing their queues), wait for them."""
        server = self._server
        if server is None:
            return
        self._server = None
        server.close()
        for sniffing in list(self._sniffing):
            sniffing.drop()
        closing = list(self.connections.values())
        for conn in closing:
            conn.close("server stopping")
        ends = monotonic() + timeout
        for conn in closing:
            conn._out.wait(max(0.0, ends - monotonic()))
        workers = self.workers
        if not workers.join(max(0.0, ends - monotonic())):
            workers.kill()
            workers.join(1.0)
        for conn in closing:
            conn._out.close(flush=False)
        self.bad_input.close()

    def _forget(self, conn):
        self.connections.pop(conn.id, None)

    def _refuse(self, address):
        config = self.config
        if config.is_blacklisted(address[0]):
            self.bad_input.note(badinput.BLACKLISTED, address[0], "refused")
            return True
        if config.max_connections is not None and self.count >= config.max_connections:
            self.bad_input.note(badinput.OVER_MAX_CONNECTIONS, address[0], "%d connections reached "
                                "(maxConnections)" % config.max_connections)
            return True
        return False

    def _accept(self, sock, address):
        """An accepted socket (in the hub: no greenlet until its first bytes arrive)."""
        if self._refuse(address):
            sock.close()
            return
        try:
            if self.config.no_delay:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sniffing = _Sniffing(self, sock, address)
        except OSError as exc:      # the client already left
            logger.debug("dropped %s at accept: %r", address, exc)
            sock.close()
            return
        self._sniffing.add(sniffing)
        if self._ssl_context is not None:
            self.workers.run(_sniff, sniffing)   # the TLS handshake starts at once
        else:
            sock._read_event.start(_first_bytes, sniffing)

    def _open_sniffed(self, sniffing):
        """In a worker: sniff the transport and start the Connection (or drop the socket)."""
        sock, address = sniffing.sock, sniffing.address
        sniffing.worker = getcurrent()
        try:
            conn, initial = self._open(sock, address)
        except (HandshakeTimeout, OSError, gevent.GreenletExit) as exc:
            logger.debug("dropped %s before its transport was known: %r", address, exc)
            conn = None
        finally:
            sniffing.worker = None
            self._sniffing.discard(sniffing)
        if conn is None:
            sniffing.stop_timer()
            return
        self.connections[conn.id] = conn
        timer, sniffing.timer = sniffing.timer, None
        if self._ssl_context is not None:
            conn.serve(initial, timer)      # TLS keeps this worker for the connection's life
        else:
            conn.start(initial, timer)      # owns the deadline from here on

    def _open(self, sock, address):
        """Sniff the transport: (Connection, bytes already read) or (None, b"") when dropped."""
        conn = None
        try:
            if self._ssl_context is not None:
                # The TLS socket takes over the descriptor, so it must be closed here on failure.
                sock = self._ssl_context.wrap_socket(sock, server_side=True,
                                                     do_handshake_on_connect=False)
                sock.do_handshake()
            first = sock.recv(RECV_SIZE)
            if not first:
                return None, b""
            if first[0] in _HTTP_FIRST_BYTES:
                upgraded = accept_upgrade(
                    sock, first, lambda why: self.bad_input.note(badinput.BAD_UPGRADE, address[0], why))
                if upgraded is None:
                    return None, b""
                headers, first = upgraded
                conn = WsConnection(self, sock, address, next(self._sids), headers)
            else:
                conn = TcpConnection(self, sock, address, next(self._sids))
            return conn, first
        finally:
            if conn is None:
                sock.close()


class _Listener(StreamServer):
    """The listening socket; accepted sockets belong to the connector from then on (gevent's
    server would close them when the handler returns, and ours returns at once)."""

    def do_close(self, sock, *args):
        pass


class _Sniffing:
    """An accepted socket whose transport is not known yet, under the handshake deadline."""

    __slots__ = ("connector", "sock", "address", "timer", "worker")

    def __init__(self, connector, sock, address):
        self.connector = connector
        self.sock = sock
        self.address = address
        self.worker = None      # the worker reading it now
        seconds = connector.config.handshake_timeout
        # repeat=seconds: the connection re-arms it with timer.again() after the handshake
        self.timer = gevent.get_hub().loop.timer(seconds, seconds)
        self.timer.start(_sniff_expired, self)

    def stop_timer(self):
        timer, self.timer = self.timer, None
        if timer is not None:
            timer.stop()
            timer.close()

    def drop(self):
        """Give up on it (the deadline, the connector stopping)."""
        worker = self.worker
        if worker is not None:
            gevent.get_hub().loop.run_callback(_throw_if_sniffing, self, worker)
            return
        self.connector._sniffing.discard(self)
        self.stop_timer()
        event = self.sock._read_event
        if event is not None:
            event.stop()
        self.sock.close()


def _first_bytes(sniffing):
    """Read watcher callback (in the hub): the client sent its first bytes."""
    sniffing.sock._read_event.stop()
    sniffing.connector.workers.run(_sniff, sniffing)


def _sniff(sniffing, _arg):
    sniffing.connector._open_sniffed(sniffing)


def _sniff_expired(sniffing):
    """Handshake deadline while sniffing (in the hub)."""
    worker = sniffing.worker
    if worker is not None:
        worker.throw(HandshakeTimeout)
    else:
        sniffing.drop()


def _throw_if_sniffing(sniffing, worker):
    if sniffing.worker is worker:
        worker.throw(gevent.GreenletExit)
