"""A prototype of the connector's WebSocket path on gevent-websocket, for measuring only.

`install()` replaces `Connector._accept` in the calling process (a greenlet per accepted
socket): the transport is sniffed with MSG_PEEK (one byte, left in the socket), raw TCP
connections go the usual way, and WebSocket ones are handed untouched to gevent's pywsgi with gevent-websocket's `WebSocketHandler`, which
parses the HTTP request, answers the upgrade and then runs a WSGI application that serves the
Pomelo connection: frames are read with `WebSocket.receive()` and written as frames made by
gevent-websocket's `Header.encode_header`, through the connector's own write queue (batching and
back-pressure are ours either way). Only what a measurement needs: no TLS, no handshake timer
during the HTTP upgrade, no maxWsMessage limit beyond gevent-websocket's own.

bench_websocket.py starts the bench app with this installed (ZPOMELO_BENCH_WS=gevent-websocket).
"""
import logging
import socket

import gevent
from gevent import pywsgi
from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.handler import WebSocketHandler
from geventwebsocket.websocket import Header, WebSocket

from zpomelo.connector import hybrid
from zpomelo.connector.conn import CLOSED, Connection, Deadline, HandshakeTimeout, start_deadline

logger = logging.getLogger(__name__)

_HTTP_FIRST_BYTES = frozenset(b"GPDH")
_CLOSE_FRAME = Header.encode_header(True, WebSocket.OPCODE_CLOSE, b"", 2, 0) + (1000).to_bytes(2, "big")


def _frame(payload):
    return Header.encode_header(True, WebSocket.OPCODE_BINARY, b"", len(payload), 0) + payload


def _frame_batch(packages):
    return _frame(b"".join(packages))


class GeventWsConnection(Connection):
    """A Pomelo connection whose WebSocket frames gevent-websocket reads."""

    transport = "ws"

    def __init__(self, connector, ws, sid):
        self._ws = ws
        super().__init__(connector, ws.handler.socket, ws.handler.client_address, sid)
        self.request_headers = {}

    def _read_loop(self, data):
        receive = self._ws.receive
        handle_bytes = self.handle_bytes
        while True:
            try:
                message = receive()
            except WebSocketError:
                return "client closed"
            if message is None:
                return "client closed"
            if message.__class__ is str:
                message = message.encode("utf-8")
            handle_bytes(message)
            if self.state is CLOSED:
                return self.close_reason

    def _framing(self):
        return _frame, _frame_batch

    def _closing_bytes(self):
        return _CLOSE_FRAME


def _serve_websocket(environ, start_response):
    """The WSGI application: one Pomelo connection per upgraded request."""
    ws = environ.get("wsgi.websocket")
    if ws is None:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"This port speaks the Pomelo protocol over WebSocket or TCP"]
    connector = environ["zpomelo.connector"]
    conn = GeventWsConnection(connector, ws, next(connector._sids))
    connector.connections[conn.id] = conn
    deadline = start_deadline(connector.config.handshake_timeout, HandshakeTimeout, gevent.getcurrent())
    try:
        conn.serve(b"", deadline)
    except Deadline:
        pass
    return []


class _Server(pywsgi.WSGIServer):
    """The pywsgi server object a handler needs (never started: the connector accepts)."""

    def __init__(self, connector):
        super().__init__(("127.0.0.1", 0), _serve_websocket, handler_class=WebSocketHandler,
                         log=None, error_log=logger)
        self.environ = {"zpomelo.connector": connector, "SERVER_NAME": "zpomelo", "SERVER_PORT": "0",
                        "GATEWAY_INTERFACE": "CGI/1.1", "SCRIPT_NAME": "",
                        "wsgi.version": (1, 0), "wsgi.multithread": False,
                        "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.url_scheme": "http"}


def _accept(self, sock, address):
    gevent.spawn(_sniff_with_peek, self, sock, address)


def _sniff_with_peek(self, sock, address):
    try:
        first = sock.recv(1, socket.MSG_PEEK)
    except OSError:
        first = b""
    if not first:
        sock.close()
        return
    if first[0] not in _HTTP_FIRST_BYTES:
        return _original_accept(self, sock, address)     # the first byte is still unread
    if self._refuse(address):
        sock.close()
        return
    if self.config.no_delay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server = getattr(self, "_wsgi_server", None)
    if server is None:
        server = self._wsgi_server = _Server(self)
    try:
        WebSocketHandler(sock, address, server).handle()
    finally:
        sock.close()


_original_accept = hybrid.Connector._accept


def install():
    hybrid.Connector._accept = _accept
    logger.warning("connector WebSocket path: gevent-websocket prototype (bench only)")
