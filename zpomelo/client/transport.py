"""The client's transport: TCP connect, TLS, the WebSocket upgrade, framing and the one writer.

Knows nothing of Pomelo messages: it moves whole packages. Out, each package goes through a
zpomelo.socket_writer.SocketWriter (straight to the socket while it is idle, else queued for one
writer greenlet); over WebSocket every package is its own masked BINARY frame, because Pomelo's
own server decodes one package per WebSocket message. In, `read` runs the reader greenlet's loop:
bytes -> frames -> packages -> the protocol client's `handle(packages)`.
"""
import logging
import socket as stdlib_socket
import ssl as stdlib_ssl
import time

from gevent import socket as gsocket
from gevent import ssl as gssl

from zpomelo.client.errors import ConnectionClosed
from zpomelo.errors import ProtocolError
from zpomelo.netio import input_waiting, make_receiver
from zpomelo.protocol import package, websocket
from zpomelo.socket_writer import SocketWriter

logger = logging.getLogger(__name__)

_RECV_SIZE = 65536
_MAX_UPGRADE_RESPONSE = 16384
_monotonic = time.monotonic


class TcpFraming:
    """Raw TCP: the byte stream is the package stream."""

    peer_closed = None
    frame = frame_batch = None         # packages go out as they are

    def __init__(self, max_body):
        self.feed = package.PackageDecoder(max_body).feed


def _masked_frame(pkg):
    return websocket.encode_frame(pkg, mask=True)


def _masked_frames(packages):
    return b"".join([websocket.encode_frame(p, mask=True) for p in packages])


class WsFraming:
    """WebSocket: one masked BINARY frame per package out; any number of packages per message in.

    `send_control(frame)` answers pings (set by the Transport to its writer's `control`)."""

    frame = staticmethod(_masked_frame)
    frame_batch = staticmethod(_masked_frames)

    def __init__(self, max_body):
        # A message may hold several packages, each up to max_body, so only the package decoder
        # enforces the per-package limit; the frame limit just bounds memory.
        self._frames = websocket.FrameDecoder(max_payload=max(max_body + package.HEADER_SIZE,
                                                              1 << 20) * 4)
        self._packages = package.PackageDecoder(max_body)
        self.send_control = None
        self.peer_closed = None        # the reason, once a CLOSE frame arrived

    def feed(self, data):
        out = []
        for opcode, payload in self._frames.feed(data):
            if opcode == websocket.BINARY or opcode == websocket.TEXT:
                out.extend(self._packages.feed(payload))
            elif opcode == websocket.PING:
                self.send_control(websocket.encode_frame(payload, websocket.PONG, mask=True))
            elif opcode == websocket.CLOSE:
                # What arrived before the CLOSE still counts (a kick, a last response).
                code, reason = websocket.parse_close(payload)
                self.peer_closed = "the server closed the WebSocket (%s %s)" % (code, reason)
                break
        return out


def ssl_context(ssl, verify):
    """The gevent SSLContext for `ssl=` (True or a gevent context); see Client.connect."""
    if isinstance(ssl, gssl.SSLContext):
        return ssl
    if isinstance(ssl, stdlib_ssl.SSLContext):
        # Its handshake would block the whole hub (gevent.ssl.create_default_context()
        # also returns one of these).
        raise TypeError("ssl= needs a gevent.ssl.SSLContext, not the standard library's; "
                        "build it with gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_CLIENT)")
    context = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)
    if verify:
        context.load_default_certs()
    else:
        context.check_hostname = False
        context.verify_mode = gssl.CERT_NONE
    return context


def upgrade(sock, host, port, path):
    """The WebSocket HTTP upgrade; returns bytes the server sent after its response head."""
    host_header = host if port in (80, 443) else "%s:%s" % (host, port)
    request, key = websocket.client_request(host_header, path)
    sock.sendall(request)
    head = b""
    while websocket.HEADER_END not in head:
        if len(head) > _MAX_UPGRADE_RESPONSE:
            raise ProtocolError("WebSocket upgrade response head longer than %d bytes"
                                % _MAX_UPGRADE_RESPONSE)
        data = sock.recv(4096)
        if not data:
            raise ConnectionClosed("%s:%s closed the connection during the WebSocket upgrade"
                                   % (host, port))
        head += data
    end = head.index(websocket.HEADER_END) + len(websocket.HEADER_END)
    websocket.check_upgrade_response(head[:end], key)
    return head[end:]


def open_socket(host, port, kind, ssl, verify, path, timeout):
    """Connect, wrap in TLS, upgrade to WebSocket, all within `timeout` seconds in total;
    -> (socket in blocking mode, bytes read past the upgrade). Raises gevent's socket.timeout,
    OSError (ssl.SSLError included), ProtocolError or ConnectionClosed."""
    deadline = _monotonic() + timeout
    sock = gsocket.create_connection((host, port), timeout=timeout)
    try:
        sock.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY, 1)
        if ssl:
            sock.settimeout(max(0.001, deadline - _monotonic()))
            sock = ssl_context(ssl, verify).wrap_socket(sock, server_hostname=host)
        leftover = b""
        if kind == "ws":
            sock.settimeout(max(0.001, deadline - _monotonic()))
            leftover = upgrade(sock, host, port, path)
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return sock, leftover


class Transport:
    """One connected socket: `write(pkg) -> bool`, `read(handle) -> reason`, `close_gracefully`,
    `close`. `last_recv` is the monotonic time bytes last arrived (for heartbeat timeouts)."""

    def __init__(self, sock, host, port, kind, leftover, max_body, max_queued, on_error,
                 on_overflow):
        self.sock = sock
        self.host = host
        self.port = port
        self.kind = kind
        self.closed = False
        self.last_recv = _monotonic()
        self._leftover = leftover
        self._framing = WsFraming(max_body) if kind == "ws" else TcpFraming(max_body)
        # The client closes the socket itself (after failing what is pending), not the writer.
        self.writer = SocketWriter(sock, on_error, on_overflow, self._framing.frame,
                                   self._framing.frame_batch, max_packages=max_queued,
                                   owns_socket=False)
        self.write = self.writer.write
        if kind == "ws":
            self._framing.send_control = self.writer.control

    @classmethod
    def connect(cls, host, port, kind, ssl, verify, path, timeout, max_body, max_queued,
                on_error, on_overflow):
        sock, leftover = open_socket(host, port, kind, ssl, verify, path, timeout)
        return cls(sock, host, port, kind, leftover, max_body, max_queued, on_error, on_overflow)

    def read(self, handle):
        """The reader greenlet's loop: `handle(packages)` per read until the peer or `close`
        ends it; returns the reason (EOF, a WebSocket CLOSE, bad bytes, a socket error)."""
        framing = self._framing
        feed = framing.feed
        reason = "the server closed the connection"
        try:
            data = self._leftover
            self._leftover = None
            recv = make_receiver(self.sock)
            while not self.closed:
                if data:
                    handle(feed(data))
                    if framing.peer_closed:
                        reason = framing.peer_closed
                        break
                data = recv(_RECV_SIZE)
                if not data:
                    break
                self.last_recv = _monotonic()
        except ProtocolError as exc:
            reason = "protocol error from the server: %s" % exc
            logger.warning("client connection to %s:%s: %s", self.host, self.port, reason)
        except OSError as exc:
            reason = "receive failed: %s" % exc
        return reason

    def input_waiting(self):
        """Whether the server's bytes wait unread (netio.input_waiting)."""
        return not self.closed and input_waiting(self.sock)

    def close_gracefully(self, timeout):
        """Send what is queued (and a WebSocket CLOSE), waiting up to `timeout` seconds."""
        last = b""
        if self.kind == "ws":
            last = websocket.encode_frame(websocket.CLOSE_NORMAL.to_bytes(2, "big"),
                                          websocket.CLOSE, mask=True)
        self.writer.close(True, timeout, last)
        self.writer.wait(timeout)

    def close(self):
        """Drop what is queued, stop the writer, close the socket (idempotent)."""
        self.closed = True
        self.writer.close(flush=False)
        self.sock.close()
