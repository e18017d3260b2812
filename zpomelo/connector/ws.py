"""WebSocket transport on our own lean frame path (zpomelo.protocol.websocket).

``accept_upgrade`` reads the HTTP upgrade on a freshly sniffed socket; ``WsConnection`` then unframes
what is read (each binary or text message holds any number of packages) and writes every batch of
queued packages as one binary message.
"""
import logging

from zpomelo.connector.conn import CLOSED, Connection
from zpomelo.errors import ProtocolError
from zpomelo.netio import os_socket
from zpomelo.protocol import websocket as wsproto

logger = logging.getLogger(__name__)


def accept_upgrade(sock, first, refused=None):
    """Finish the HTTP upgrade whose first bytes are ``first``.

    Returns ``(headers, leftover_bytes)`` after sending the 101 response, or None after answering
    a request that is not a valid upgrade with 400 (the caller then closes the socket);
    ``refused(why)`` is told why (the connector counts it, see connector.badinput).
    """
    buf = first
    while True:
        end = buf.find(wsproto.HEADER_END)
        if end >= 0:
            break
        if len(buf) > wsproto.MAX_REQUEST_HEADER:
            if refused is not None:
                refused("request header over %d bytes" % wsproto.MAX_REQUEST_HEADER)
            sock.sendall(wsproto.error_response(431, "Request Header Fields Too Large"))
            return None
        data = sock.recv(4096)
        if not data:
            return None
        buf += data
    head = buf[:end]
    try:
        headers = wsproto.parse_upgrade(head)
    except ProtocolError as exc:
        if refused is not None:
            refused(str(exc))
        else:
            logger.info("refused an HTTP request that is not a WebSocket upgrade: %s", exc)
        sock.sendall(wsproto.error_response(
            400, "Bad Request", "This port speaks the Pomelo protocol over WebSocket or TCP: %s" % exc))
        return None
    _send_all(sock, wsproto.upgrade_response(headers["sec-websocket-key"]))
    return headers, buf[end + len(wsproto.HEADER_END):]


def _send_all(sock, data):
    """sendall, trying the OS socket first: a fresh socket takes a 101 response at once, and
    gevent's sendall costs several Python calls more. TLS always goes through the SSL socket."""
    os_sock = os_socket(sock)
    if os_sock is not None:
        try:
            sent = os_sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    sock.sendall(data)


class WsConnection(Connection):
    transport = "ws"

    def __init__(self, connector, sock, address, sid, request_headers=None):
        super().__init__(connector, sock, address, sid)
        self.request_headers = request_headers or {}
        self._frames = wsproto.FrameDecoder(connector.config.max_ws_message, require_mask=True)
        self._close_frame = _CLOSE_NORMAL

    def _feed(self, data):
        handle_bytes = self.handle_bytes
        for opcode, payload in self._frames.feed(data):
            if opcode == wsproto.BINARY or opcode == wsproto.TEXT:
                handle_bytes(payload)
                if self.state is CLOSED:
                    return None
            elif opcode == wsproto.PING:
                self._send_control(wsproto.encode_frame(payload, wsproto.PONG))
            elif opcode == wsproto.CLOSE:
                code, _ = wsproto.parse_close(payload)
                if code is not None:
                    self._close_frame = wsproto.encode_close(code)
                self.client_left = True     # a close frame is a goodbye, not a drop
                return "client closed"
        return None

    def _send_control(self, frame):
        self._out.control(frame)     # keeps only the latest pong: a ping flood cannot grow it

    def _on_protocol_error(self, exc):
        too_big = "exceeds the limit" in str(exc)
        code = wsproto.CLOSE_TOO_BIG if too_big else wsproto.CLOSE_PROTOCOL_ERROR
        self._close_frame = wsproto.encode_close(code)

    def _framing(self):
        return _frame_once, _frame_batch

    def _closing_bytes(self):
        return self._close_frame


_CLOSE_NORMAL = wsproto.encode_close(wsproto.CLOSE_NORMAL)
_last_framed = [None, b""]      # the last package framed alone, and its frame


def _frame_once(package, _encode=wsproto.encode_frame):
    """One package as one WebSocket message. A push written to many clients is the same bytes
    object for each of them (encoded once per frontend), so it is framed once, not per client."""
    last = _last_framed
    if package is last[0]:
        return last[1]
    framed = _encode(package)
    last[0] = package
    last[1] = framed
    return framed


def _frame_batch(packages, _encode=wsproto.encode_frame):
    return _encode(b"".join(packages))      # a batch is one message
