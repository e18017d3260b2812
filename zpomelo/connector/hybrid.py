"""Connector: one listening port for raw TCP and WebSocket clients, optionally under TLS.

The first bytes of a connection decide its transport: an HTTP method (GET, POST, PUT, DELETE,
HEAD) means a WebSocket upgrade, anything else raw Pomelo packages. A package's type byte is 1..5,
so the first byte alone tells them apart; the bytes read while sniffing are handed on, never
re-read (MSG_PEEK does not work inside TLS).
"""
import itertools
import logging
import socket

import gevent
from gevent import ssl as gevent_ssl
from gevent.pool import Pool
from gevent.server import StreamServer

from zpomelo.connector import badinput, ratelimit
from zpomelo.connector.conn import RECV_SIZE, Deadline, HandshakeTimeout, start_deadline
from zpomelo.connector.tcp import TcpConnection
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
        self._sniffing = set()  # handler greenlets whose transport is not known yet
        self._sids = itertools.count(1)
        self._ssl_context = make_ssl_context(self.config.ssl)
        self._server = None
        self._handlers = None
        self.bad_input = badinput.BadInputLog("connector %s:%s" % (host, port))
        # messages refused by the per-connection rate limits, by kind, and connections kicked
        self.rate_limited = {ratelimit.REQUESTS: 0, ratelimit.BYTES: 0, ratelimit.TOO_BIG: 0,
                             ratelimit.KICKED: 0}
        # addresses kicked for flooding lately: their new connections get no fresh burst
        self.recent_kicks = ratelimit.KickMemory(self.config.rate_limits.kick_window)
        # a frontend that forwards request bodies untouched (FrontendService) gets JSON request
        # bodies undecoded, as codec.RawBody (ServerCodec.decode_lazy)
        self.lazy_bodies = getattr(frontend, "lazy_bodies", False)

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
        self._handlers = Pool()
        self._server = StreamServer((self.host, self.port), self._handle,
                                    backlog=self.config.backlog, spawn=self._handlers)
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
        for greenlet in list(self._sniffing):
            greenlet.kill(block=False)
        for conn in list(self.connections.values()):
            conn.close("server stopping")
        self._handlers.join(timeout=timeout)
        self._handlers.kill(block=True, timeout=1.0)
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

    def _handle(self, sock, address):
        """The reader greenlet of one accepted socket (the server closes it when this returns)."""
        if self._refuse(address):
            return
        config = self.config
        current = gevent.getcurrent()
        deadline = start_deadline(config.handshake_timeout, HandshakeTimeout, current)
        self._sniffing.add(current)
        try:
            conn, initial = self._open(sock, address)
        except (HandshakeTimeout, OSError, gevent.GreenletExit) as exc:
            logger.debug("dropped %s before its transport was known: %r", address, exc)
            conn = None
        finally:
            self._sniffing.discard(current)
        if conn is None:
            deadline.stop()
            deadline.close()
            return
        self.connections[conn.id] = conn
        try:
            conn.serve(initial, deadline)  # owns the deadline from here on
        except Deadline:  # raced with the connection's own close; nothing left to do
            pass

    def _open(self, sock, address):
        """Sniff the transport: (Connection, bytes already read) or (None, b"") when dropped."""
        if self.config.no_delay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
