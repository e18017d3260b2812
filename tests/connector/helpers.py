"""Test helpers for the connector: a fake frontend and a raw Pomelo client over TCP or WebSocket."""
import json

from gevent import socket
from gevent import ssl as gevent_ssl

from zpomelo.connector import Connector, ConnectorConfig
from zpomelo.protocol import handshake, message, package
from zpomelo.protocol import websocket as ws
from zpomelo.protocol.codec import ServerCodec
from zpomelo.testing import rounds

IO_TIMEOUT = 5.0
CLOSE_TIMEOUT = 30.0     # the longest a test waits for the server to close a connection


class FakeFrontend:
    """The duck-typed frontend interface, recording what the connector reports."""

    def __init__(self, config):
        self.connector_config = config
        self.codec = config.codec
        self.connected = []
        self.notifies = []
        self.requests = []
        self.closed = {}            # sid -> reason
        self.close_calls = 0
        self.refuse_connect = False

    def on_connect(self, conn):
        self.connected.append(conn)
        return not self.refuse_connect

    def on_handshake(self, conn, sys, user):
        user = user or {}
        if user.get("old_client"):
            return 501, None
        if user.get("explode"):
            raise RuntimeError("handshake hook failed")
        return 200, {"hello": user.get("name", "anon")}

    def on_request(self, conn, msg_id, route, body):
        self.requests.append((conn.id, msg_id, route, body))
        codec = self.codec
        if route == "test.h.kick":
            conn.kick(body.get("reason", ""))
        elif route == "test.h.push":
            for i in range(body.get("count", 1)):
                conn.send(codec.encode_push("onPush", {"i": i, "pad": body.get("pad", "")}))
            if msg_id:
                conn.send(codec.encode_response(msg_id, route, {"code": 200}))
        elif msg_id:
            conn.send(codec.encode_response(msg_id, route, {"code": 200, "echo": body}))
        else:
            self.notifies.append((route, body))

    def on_close(self, conn, reason):
        self.close_calls += 1
        assert conn.id not in self.closed, "on_close reported twice for sid %s" % conn.id
        self.closed[conn.id] = reason


def start_connector(**config_kwargs):
    config_kwargs.setdefault("codec", ServerCodec())
    frontend = FakeFrontend(ConnectorConfig(**config_kwargs))
    connector = Connector(frontend, "127.0.0.1", 0).start()
    return connector, frontend


class RawClient:
    """A minimal hand-driven Pomelo client: raw bytes in, decoded packages out."""

    def __init__(self, port, transport="tcp", tls=False, connect=True):
        self.port = port
        self.transport = transport
        self.tls = tls
        self.sock = None
        self.ws_messages = 0        # WebSocket messages received (to observe coalescing)
        self._packages = package.PackageDecoder(package.MAX_BODY_LIMIT)
        self._frames = ws.FrameDecoder(max_payload=1 << 24)
        self._ready = []
        self.eof = False
        if connect:
            self.connect()

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT)
        if self.tls:
            context = gevent_ssl.SSLContext(gevent_ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = gevent_ssl.CERT_NONE
            sock = context.wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        if self.transport == "ws":
            request, key = ws.client_request("127.0.0.1:%d" % self.port, "/pomelo")
            sock.sendall(request)
            head = b""
            while ws.HEADER_END not in head:
                data = sock.recv(4096)
                assert data, "server closed during the WebSocket upgrade"
                head += data
            end = head.index(ws.HEADER_END) + 4
            ws.check_upgrade_response(head[:end], key)
            self._feed(head[end:])
        return self

    def close(self):
        if self.sock is not None:
            self.sock.close()

    # ---- sending ----

    def send_raw(self, data):
        """Send bytes as one TCP write or one masked WebSocket message."""
        if self.transport == "ws":
            data = ws.encode_frame(data, mask=True)
        self.sock.sendall(data)

    def send_frame(self, frame):
        self.sock.sendall(frame)

    def send_request(self, msg_id, route, body):
        payload = json.dumps(body).encode()
        self.send_raw(package.encode(package.DATA, message.encode_request(msg_id, route, payload)))

    def send_notify(self, route, body):
        payload = json.dumps(body).encode()
        self.send_raw(package.encode(package.DATA, message.encode_notify(route, payload)))

    # ---- receiving ----

    def _feed(self, data):
        if self.transport == "ws":
            for opcode, payload in self._frames.feed(data):
                if opcode in (ws.BINARY, ws.TEXT):
                    self.ws_messages += 1
                    self._ready.extend(self._packages.feed(payload))
                elif opcode == ws.CLOSE:
                    self._ready.append(("ws-close", payload))
                else:
                    self._ready.append(("ws-%d" % opcode, payload))
        else:
            self._ready.extend(self._packages.feed(data))

    def recv_package(self):
        """The next (ptype, body); raises AssertionError on EOF or timeout."""
        while not self._ready:
            data = self.sock.recv(65536)
            if not data:
                self.eof = True
                raise AssertionError("connection closed while waiting for a package")
            self._feed(data)
        return self._ready.pop(0)

    def recv_data(self):
        ptype, body = self.recv_package()
        assert ptype == package.DATA, (ptype, body)
        msg = message.decode(body)
        return msg.type, msg.id, msg.route, json.loads(bytes(msg.body)) if msg.body else {}

    def wait_closed(self):
        """Once the server closed the connection: what arrived before (packages). A server that
        keeps sending (heartbeats) and never closes fails after CLOSE_TIMEOUT."""
        seen = []
        for _ in rounds(seconds=CLOSE_TIMEOUT):
            while self._ready:
                seen.append(self._ready.pop(0))
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                self.eof = True
                return seen
            self._feed(data)
        raise AssertionError("the server did not close the connection within %.0f s" % CLOSE_TIMEOUT)

    # ---- protocol steps ----

    def handshake(self, user=None, sys=None, ack=True):
        sys = sys if sys is not None else {"type": "test-client", "version": "0.0.1"}
        self.send_raw(handshake.encode_client_request(sys, user))
        ptype, body = self.recv_package()
        assert ptype == package.HANDSHAKE
        reply = handshake.parse_response(body)
        if ack and reply["code"] == 200:
            self.send_raw(package.HANDSHAKE_ACK_PACKAGE)
            assert self.recv_package() == (package.HEARTBEAT, b"")
        return reply

    def request(self, msg_id, route, body):
        self.send_request(msg_id, route, body)
        mtype, rid, _, reply = self.recv_data()
        assert mtype == message.RESPONSE and rid == msg_id, (mtype, rid)
        return reply
