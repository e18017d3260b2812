"""zpomelo.client against a scripted fake peer (no server): wire bytes vs docs/protocol.md section 9.

The peer is a gevent StreamServer on 127.0.0.1 port 0. It records every package the client sends
(over WebSocket it unframes with protocol/websocket.py and insists on masked frames) and sends
the bytes each test scripts. Every wait has a deadline; nothing sleeps to wait.
"""
import json
import select
import socket
import struct
import subprocess
import time

import gevent
import gevent.queue
import pytest
from gevent import ssl as gssl
from gevent import monkey
from gevent import socket as gsocket
from gevent.event import AsyncResult, Event
from gevent.server import StreamServer

from zpomelo.client import (MAX_REQUEST_ID, Client, ClientTimeout, ConnectionClosed,
                            HandshakeCache, HandshakeError, RequestTimeout)
from zpomelo.errors import ZpomeloError
from zpomelo.protocol import package, websocket
from zpomelo.protocol.protobuf import ProtobufPair
from zpomelo.testing import wait_until

from tests.protocol.vectors import (ERROR_RESPONSE_VECTOR, HANDSHAKE_ERROR_VECTOR, KICK_VECTOR,
                                    PUSH_PROTOBUF_VECTOR, PUSH_VECTOR, REQUEST_DICT_VECTOR,
                                    REQUEST_VECTOR)
from tests.protocol.vectors import h as hx

pytestmark = pytest.mark.timeout(30)

WAIT = 3.0   # upper bound of any wait on the other side; tests finish far sooner
original_poll = monkey.get_original("select", "poll")


# docs/protocol.md section 9 (tests/protocol/vectors.py), and the ones only this client needs
V_REQUEST, V_REQUEST_DICT, V_ERROR_RESPONSE_ID3 = REQUEST_VECTOR, REQUEST_DICT_VECTOR, ERROR_RESPONSE_VECTOR
V_PUSH, V_PUSH_DICT_PROTO = PUSH_VECTOR, PUSH_PROTOBUF_VECTOR
V_HANDSHAKE_ERROR, V_KICK = HANDSHAKE_ERROR_VECTOR, KICK_VECTOR
V_ACK = hx("02 00 00 00")
V_HEARTBEAT = hx("03 00 00 00")
V_HANDSHAKE_REPLY = hx("01 00 00 22") + b'{"code":200,"sys":{"heartbeat":3}}'

ENTRY = "connector.entryHandler.entry"
ROUTE_TO_CODE = {"area.playerHandler.move": 1, ENTRY: 8, "onChat": 13}
DICT_SYS = {"useDict": True, "dict": ROUTE_TO_CODE, "routeToCode": ROUTE_TO_CODE,
            "codeToRoute": {str(c): r for r, c in ROUTE_TO_CODE.items()}, "dictVersion": "dv1"}
PROTOS = ProtobufPair(server_protos={"onChat": {"required string msg": 1}}, client_protos={})


def handshake_reply(sys=None, code=200, user=None):
    reply = {"code": code}
    if sys is not None:
        reply["sys"] = sys
    if user is not None:
        reply["user"] = user
    return package.encode(package.HANDSHAKE, json.dumps(reply).encode())


def response(msg_id, body):
    return package.encode(package.DATA, bytes((0x04, msg_id)) + json.dumps(body).encode())


class PeerConn:
    """The server side of one client connection, driven by the test."""

    def __init__(self, sock, transport):
        self.sock = sock
        self.transport = transport
        self.packages = gevent.queue.Queue()   # whole packages (header + body) the client sent
        self.ws_messages = 0                   # WebSocket data messages seen
        self.eof = Event()                     # the client closed its side
        self.pongs = gevent.queue.Queue()

    def run(self):
        buf = b""
        try:
            if self.transport == "ws":
                while websocket.HEADER_END not in buf:
                    data = self.sock.recv(4096)
                    if not data:
                        return
                    buf += data
                end = buf.index(websocket.HEADER_END) + 4
                headers = websocket.parse_upgrade(buf[:end])
                self.path = headers[":path"]
                self.sock.sendall(websocket.upgrade_response(headers["sec-websocket-key"]))
                buf = buf[end:]
                frames = websocket.FrameDecoder(require_mask=True)   # client frames must be masked
            decoder = package.PackageDecoder(package.MAX_BODY_LIMIT)
            while True:
                if buf:
                    if self.transport == "ws":
                        for opcode, payload in frames.feed(buf):
                            if opcode == websocket.PONG:
                                self.pongs.put(payload)
                            elif opcode == websocket.CLOSE:
                                self.packages.put(("ws-close", payload))
                            else:
                                self.ws_messages += 1
                                pkgs = decoder.feed(payload)
                                assert len(pkgs) == 1, "one package per WebSocket message"
                                self.packages.put(package.encode(*pkgs[0]))
                    else:
                        for ptype, body in decoder.feed(buf):
                            self.packages.put(package.encode(ptype, body))
                buf = self.sock.recv(65536)
                if not buf:
                    return
        except OSError:
            return
        finally:
            self.eof.set()

    def recv(self, timeout=WAIT):
        """The next package the client sent (bytes, header included)."""
        return self.packages.get(timeout=timeout)

    def recv_data(self, timeout=WAIT):
        """The next DATA package, skipping heartbeats."""
        deadline = time.monotonic() + timeout
        while True:
            pkg = self.recv(max(0.0, deadline - time.monotonic()))
            if pkg != V_HEARTBEAT:
                return pkg

    def send(self, *packages, one_message=False):
        """Send whole packages; over WebSocket each in its own frame unless `one_message`."""
        if self.transport == "ws":
            if one_message:
                data = websocket.encode_frame(b"".join(packages))
            else:
                data = b"".join(websocket.encode_frame(p) for p in packages)
        else:
            data = b"".join(packages)
        self.sock.sendall(data)

    def send_frame(self, frame):
        self.sock.sendall(frame)

    def close(self):
        self.sock.close()


class FakePeer:
    def __init__(self, transport, ssl_files=None):
        self.transport = transport
        self.conns = gevent.queue.Queue()
        kwargs = {}
        if ssl_files:
            context = gssl.SSLContext(gssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*ssl_files)
            kwargs = {"ssl_context": context}
        self.server = StreamServer(("127.0.0.1", 0), self._handle, **kwargs)
        self.server.start()
        self.port = self.server.server_port

    def _handle(self, sock, address):
        conn = PeerConn(sock, self.transport)
        self.conns.put(conn)
        conn.run()

    def accept(self, timeout=WAIT):
        return self.conns.get(timeout=timeout)

    def stop(self):
        self.server.stop(timeout=0)


@pytest.fixture(params=["tcp", "ws"])
def peer(request):
    p = FakePeer(request.param)
    yield p
    p.stop()


def connect(peer, reply=V_HANDSHAKE_REPLY, **options):
    """Connect a client to the peer through the handshake; -> (client, conn, handshake package)."""
    pending = gevent.spawn(Client.connect, "127.0.0.1", peer.port, transport=peer.transport,
                           timeout=WAIT, **options)
    conn = peer.accept()
    hs = conn.recv()
    conn.send(reply)
    assert conn.recv() == V_ACK
    client = pending.get(timeout=WAIT)
    return client, conn, hs


def spawn_request(client, route, body, timeout=WAIT):
    return gevent.spawn(client.request, route, body, timeout)


# ---- handshake ---------------------------------------------------------------------------------

def test_handshake_package_and_ack(peer):
    client, conn, hs = connect(peer, user={"token": "t"})
    with client:
        assert hs[0] == package.HANDSHAKE
        assert int.from_bytes(hs[1:4], "big") == len(hs) - 4
        sent = json.loads(hs[4:])
        assert sent == {"sys": {"type": "zpomelo-python", "version": "0.1.0", "protoVersion": 0},
                        "user": {"token": "t"}}
        assert client.heartbeat == 3
        assert client.is_open
        if peer.transport == "ws":
            assert conn.path == "/"


def test_handshake_reply_user_and_ws_path():
    peer = FakePeer("ws")
    try:
        client, conn, _ = connect(peer, reply=handshake_reply({}, user={"welcome": 1}), path="/game")
        with client:
            assert conn.path == "/game"
            assert client.handshake_user == {"welcome": 1}
            assert client.heartbeat is None
    finally:
        peer.stop()


@pytest.mark.parametrize("reply,code", [(V_HANDSHAKE_ERROR, 500), (handshake_reply(code=501), 501)])
def test_handshake_refused_raises_handshake_error(peer, reply, code):
    pending = gevent.spawn(Client.connect, "127.0.0.1", peer.port, transport=peer.transport,
                           timeout=WAIT)
    conn = peer.accept()
    conn.recv()
    conn.send(reply)
    with pytest.raises(HandshakeError) as info:
        pending.get(timeout=WAIT)
    assert info.value.code == code
    assert isinstance(info.value, ZpomeloError)
    assert str(code) in str(info.value)
    assert conn.eof.wait(WAIT), "the client closes after a refused handshake"


def test_handshake_timeout(peer):
    started = time.monotonic()
    with pytest.raises(ClientTimeout, match="no handshake reply"):
        Client.connect("127.0.0.1", peer.port, transport=peer.transport, timeout=0.2)
    assert time.monotonic() - started < 2
    assert peer.accept().eof.wait(WAIT)


def test_connect_refused_port_raises_oserror():
    peer = FakePeer("tcp")
    port = peer.port
    peer.stop()
    with pytest.raises(OSError):
        Client.connect("127.0.0.1", port, timeout=1)


def test_bad_transport_is_rejected():
    with pytest.raises(ValueError, match="transport"):
        Client("127.0.0.1", 1, transport="udp")


def test_server_heartbeat_right_after_ack_is_not_required_but_accepted(peer):
    client, conn, _ = connect(peer)
    with client:
        conn.send(V_HEARTBEAT, V_PUSH)            # Pomelo's heartbeat after the ACK, then data
        assert client.wait_push("onChat", timeout=WAIT) == {"msg": "hi"}


# ---- requests ----------------------------------------------------------------------------------

def test_request_bytes_string_route_and_response(peer):
    client, conn, _ = connect(peer)
    with client:
        g = spawn_request(client, ENTRY, {"uid": "a"})
        assert conn.recv_data() == V_REQUEST
        conn.send(response(1, {"code": 200, "user": "a"}))
        assert g.get(timeout=WAIT) == {"code": 200, "user": "a"}
        assert client.pending_count == 0


def test_request_bytes_with_dictionary_code(peer):
    client, conn, _ = connect(peer, reply=handshake_reply(dict(DICT_SYS, heartbeat=3)))
    with client:
        g = spawn_request(client, ENTRY, {"uid": "a"})
        assert conn.recv_data() == V_REQUEST_DICT
        conn.send(response(1, {}))
        assert g.get(timeout=WAIT) == {}


def test_error_response_vector_id3(peer):
    client, conn, _ = connect(peer)
    with client:
        greenlets = [spawn_request(client, ENTRY, {"uid": "a"}) for _ in range(3)]
        for expected_id in (1, 2, 3):
            assert conn.recv_data()[5] == expected_id
        conn.send(V_ERROR_RESPONSE_ID3, response(1, {"n": 1}))
        assert greenlets[2].get(timeout=WAIT) == {"code": 500}   # an error body is still the body
        assert greenlets[0].get(timeout=WAIT) == {"n": 1}
        conn.send(response(2, {"n": 2}))
        assert greenlets[1].get(timeout=WAIT) == {"n": 2}


def test_request_timeout_then_late_response_is_ignored(peer):
    client, conn, _ = connect(peer)
    with client:
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as info:
            client.request(ENTRY, {"uid": "a"}, timeout=0.05)
        assert time.monotonic() - started < 1
        assert info.value.route == ENTRY and info.value.request_id == 1
        assert ENTRY in str(info.value)
        assert client.pending_count == 0
        conn.send(response(1, {"late": True}))          # dropped: nobody waits for id 1
        g = spawn_request(client, ENTRY, {"uid": "b"})
        assert conn.recv_data()[5] == 1                  # request 1 on the wire
        assert conn.recv_data()[5] == 2
        conn.send(response(2, {"ok": 1}))
        assert g.get(timeout=WAIT) == {"ok": 1}
        assert client.is_open


def test_notify_bytes(peer):
    client, conn, _ = connect(peer)
    with client:
        client.notify("chat.chatHandler.send", {"m": 1})
        route = b"chat.chatHandler.send"
        body = bytes((0x02, len(route))) + route + b'{"m":1}'
        assert conn.recv_data() == package.encode(package.DATA, body)


def test_request_ids_wrap_skipping_zero(peer):
    client, conn, _ = connect(peer)
    with client:
        client._pending.last_id = MAX_REQUEST_ID - 1
        ids = []
        for _ in range(2):
            ids.append(client.request_async(ENTRY, {}, lambda err, body: None))
        assert ids == [MAX_REQUEST_ID, 1]
        first = conn.recv_data()
        assert first[4:10] == hx("00 ff ff ff ff 07")
        assert conn.recv_data()[4:6] == hx("00 01")


def test_request_async_callbacks_and_timeout(peer):
    client, conn, _ = connect(peer)
    with client:
        results = gevent.queue.Queue()
        for i in range(3):
            client.request_async(ENTRY, {"i": i}, lambda err, body, i=i: results.put((i, err, body)),
                                 timeout=0.1 if i == 2 else WAIT)
        for _ in range(3):
            conn.recv_data()
        conn.send(response(2, {"two": 2}), response(1, {"one": 1}))
        got = {}
        for _ in range(3):
            i, err, body = results.get(timeout=WAIT)
            got[i] = (err, body)
        assert got[0] == (None, {"one": 1}) and got[1] == (None, {"two": 2})
        assert got[2][1] is None and isinstance(got[2][0], RequestTimeout)
        assert got[2][0].request_id == 3 and got[2][0].timeout == 0.1
        assert client.pending_count == 0


def test_request_with_unencodable_body_raises_and_leaves_nothing_pending(peer):
    client, conn, _ = connect(peer)
    with client:
        with pytest.raises((TypeError, ValueError, ZpomeloError)):
            client.request(ENTRY, {"x": object()}, timeout=1)
        assert client.pending_count == 0
        assert client.is_open


# ---- pushes ------------------------------------------------------------------------------------

def test_push_string_route_to_queue_and_handler(peer):
    client, conn, _ = connect(peer)
    with client:
        conn.send(V_PUSH)
        assert client.wait_push("onChat", timeout=WAIT) == {"msg": "hi"}
        got = AsyncResult()
        client.on("onChat", got.set)
        conn.send(V_PUSH)
        assert got.get(timeout=WAIT) == {"msg": "hi"}
        with pytest.raises(ClientTimeout):
            client.wait_push("onChat", timeout=0.05)   # handled pushes are not queued too


def test_push_dict_code_and_protobuf_body(peer):
    sys = dict(DICT_SYS, heartbeat=3, **PROTOS.handshake_sys())
    client, conn, _ = connect(peer, reply=handshake_reply(sys))
    with client:
        conn.send(V_PUSH_DICT_PROTO)
        assert client.next_push(timeout=WAIT) == ("onChat", {"msg": "hello"})


def test_wait_push_skips_other_routes_and_keeps_them(peer):
    client, conn, _ = connect(peer)
    with client:
        other = package.encode(package.DATA, b"\x06\x05onBye" + b'{"b":1}')
        conn.send(other, V_PUSH, one_message=True)       # two packages in one WS message too
        assert client.wait_push("onChat", timeout=WAIT) == {"msg": "hi"}
        assert client.next_push(timeout=WAIT) == ("onBye", {"b": 1})


def test_push_queue_is_bounded(peer):
    client, conn, _ = connect(peer, push_queue_size=2)
    with client:
        conn.send(*[package.encode(package.DATA, b"\x06\x01p" + json.dumps({"n": n}).encode())
                    for n in range(5)])
        wait_until(lambda: client.pushes_dropped >= 3, WAIT, message="three pushes dropped")
        assert client.pushes_dropped == 3
        assert [client.wait_push("p", timeout=WAIT)["n"] for _ in range(2)] == [3, 4]


def test_cache_reuses_dictionary_and_protos_across_connections(peer):
    cache = HandshakeCache()
    sys = dict(DICT_SYS, heartbeat=3, **PROTOS.handshake_sys())
    first, _, _ = connect(peer, reply=handshake_reply(sys), cache=cache)
    first.close()
    short_sys = {"heartbeat": 3, "useDict": True, **PROTOS.handshake_sys(PROTOS.version)}
    client, conn, hs = connect(peer, reply=handshake_reply(short_sys), cache=cache)
    with client:
        sent = json.loads(hs[4:])["sys"]
        assert sent["dictVersion"] == "dv1" and sent["protoVersion"] == PROTOS.version
        g = spawn_request(client, ENTRY, {"uid": "a"})
        assert conn.recv_data() == V_REQUEST_DICT
        conn.send(V_PUSH_DICT_PROTO, response(1, {}))
        assert client.wait_push("onChat", timeout=WAIT) == {"msg": "hello"}
        assert g.get(timeout=WAIT) == {}


# ---- heartbeats --------------------------------------------------------------------------------

def test_heartbeats_sent_and_answered_keep_connection(peer):
    client, conn, _ = connect(peer, reply=handshake_reply({"heartbeat": 0.05}),
                              heartbeat_timeout=0.3)
    with client:
        started = time.monotonic()
        beats = 0
        while time.monotonic() - started < 0.5:  # outlive the 0.3 s silence timeout
            assert conn.recv() == V_HEARTBEAT
            conn.send(V_HEARTBEAT)
            beats += 1
            assert beats < 100
        assert beats >= 4
        assert client.is_open


def test_server_silence_closes_and_fails_pending(peer):
    client, conn, _ = connect(peer, reply=handshake_reply({"heartbeat": 0.05}))
    g = spawn_request(client, ENTRY, {"uid": "a"})
    assert client.closed.wait(WAIT)
    assert "heartbeat timeout" in client.close_reason
    with pytest.raises(ConnectionClosed, match="heartbeat timeout"):
        g.get(timeout=WAIT)
    assert conn.eof.wait(WAIT)


def test_a_client_stalled_past_the_timeout_reads_what_the_server_sent_meanwhile(peer):
    """A loaded machine can keep the client's process off the CPU for longer than its heartbeat
    timeout while the server goes on sending. When it runs again its heartbeat timer runs before
    its reader (libev invokes the newest pending watchers first): the bytes waiting unread show
    the server was not silent, so they are read, not taken for a dead server."""
    client, conn, _ = connect(peer, reply=handshake_reply({"heartbeat": 0.25}),
                              heartbeat_timeout=1.0)     # 1 s: room for a loaded machine
    with client:
        conn.send(V_PUSH)           # arrives, unread: this greenlet does not yield ...
        time.sleep(1.5)             # ... and the process stalls past the 1 s timeout
        assert client.wait_push("onChat", timeout=WAIT) == {"msg": "hi"}
        assert client.is_open, client.close_reason
        # a server that does go silent is still given up on
        assert client.closed.wait(WAIT)
        assert "heartbeat timeout" in client.close_reason


def test_a_client_stalled_with_its_server_gives_it_a_period_before_judging(peer):
    """Client and server stalled together (one process, as in an in-process cluster): nothing
    arrived meanwhile, and the heartbeat loop woke over half a timeout late. The client cannot
    tell whether the server went silent, so it beats and gives the server one more period."""
    client, conn, _ = connect(peer, reply=handshake_reply({"heartbeat": 0.25}),
                              heartbeat_timeout=1.0)     # 1 s: room for a loaded machine
    with client:
        time.sleep(1.6)             # the process stalls (a blocking sleep), the peer with it
        for _ in range(20):         # the client beats at once when it runs again ...
            if conn.recv() == V_HEARTBEAT:
                break
        conn.send(V_HEARTBEAT)      # ... and the server answers
        conn.send(V_PUSH)
        assert client.wait_push("onChat", timeout=WAIT) == {"msg": "hi"}
        assert client.is_open, client.close_reason
        assert client.closed.wait(WAIT)     # a server that does go silent is still given up on
        assert "heartbeat timeout" in client.close_reason


# ---- kick and close ----------------------------------------------------------------------------

def test_kick(peer):
    client, conn, _ = connect(peer)
    kicked = AsyncResult()
    client.on_kick(kicked.set)
    g = spawn_request(client, ENTRY, {"uid": "a"})
    conn.recv_data()
    conn.send(V_KICK)
    assert kicked.get(timeout=WAIT) == "kick"
    assert client.kicked_reason == "kick"
    assert client.closed.wait(WAIT)
    with pytest.raises(ConnectionClosed, match="kicked by the server: kick"):
        g.get(timeout=WAIT)
    with pytest.raises(ConnectionClosed, match="connect again"):
        client.notify("a.b.c", {})


def _recv_package(sock):
    header = _recv_exactly(sock, 4)
    return header + _recv_exactly(sock, int.from_bytes(header[1:4], "big"))


def _recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the client closed early"
        data += chunk
    return data


def test_a_send_that_fails_after_a_kick_reports_the_kick():
    """The server kicks and resets the connection while the client is sending: the send fails
    (the reset), but the KICK came first and is still readable, so the client reports the kick
    (its handlers run, its close reason says so), not only the failed send. (A peer of its own:
    nothing else may wait on the server's socket, so that closing it resets at once.)"""
    listener = gsocket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    pending = gevent.spawn(Client.connect, "127.0.0.1", listener.getsockname()[1], timeout=WAIT)
    with gevent.Timeout(WAIT):
        sock, _ = listener.accept()
    listener.close()
    with gevent.Timeout(WAIT):
        assert _recv_package(sock)[0] == package.HANDSHAKE
        sock.sendall(V_HANDSHAKE_REPLY)
        assert _recv_package(sock) == V_ACK
    client = pending.get(timeout=WAIT)
    kicked = []
    client.on_kick(kicked.append)
    sock.sendall(V_KICK)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()    # a reset, not a FIN: the client's next send fails at once
    # Nothing yields from here to the failed send, so the client's reader has not read the KICK:
    # wait for the reset with the unpatched poll (blocks the process, bounded by WAIT).
    poller = original_poll()
    poller.register(client._connection.sock.fileno(), select.POLLERR | select.POLLHUP)
    assert poller.poll(WAIT * 1000), "the reset never reached the client's socket"
    with pytest.raises(ConnectionClosed, match="send failed"):
        client.notify("a.b.c", {})
    assert client.closed.wait(WAIT)
    assert kicked == ["kick"]
    assert client.close_reason == "kicked by the server: kick"


def test_server_closes_mid_request(peer):
    client, conn, _ = connect(peer)
    reasons = AsyncResult()
    client.on_close(reasons.set)
    g = spawn_request(client, ENTRY, {"uid": "a"}, timeout=30)
    conn.recv_data()
    started = time.monotonic()
    conn.close()
    with pytest.raises(ConnectionClosed) as info:
        g.get(timeout=WAIT)
    assert time.monotonic() - started < 2          # failed at once, not at its 30 s timeout
    assert "closed" in str(info.value)
    assert reasons.get(timeout=WAIT) == client.close_reason
    with pytest.raises(ConnectionClosed):
        client.request(ENTRY, {}, timeout=1)
    with pytest.raises(ConnectionClosed):
        client.wait_push("onChat", timeout=1)


def test_async_pending_fails_on_close(peer):
    client, conn, _ = connect(peer)
    got = AsyncResult()
    client.request_async(ENTRY, {}, lambda err, body: got.set(err))
    conn.recv_data()
    conn.close()
    assert isinstance(got.get(timeout=WAIT), ConnectionClosed)


def test_client_close_flushes_and_closes(peer):
    client, conn, _ = connect(peer)
    with client:
        client.notify("a.b.c", {"last": 1})
    assert client.closed.is_set() and client.close_reason == "closed by the client"
    assert b'"last"' in conn.recv_data()
    if peer.transport == "ws":
        kind, payload = conn.recv()
        assert kind == "ws-close" and websocket.parse_close(payload)[0] == websocket.CLOSE_NORMAL
    assert conn.eof.wait(WAIT)
    client.close()                                   # idempotent


def test_more_than_max_queued_packages_closes_with_a_clear_error(peer):
    client, conn, _ = connect(peer, max_queued=50)
    failed = AsyncResult()
    client.request_async(ENTRY, {}, lambda err, body: failed.set(err))
    pad = "x" * 10000
    # Notifies never yield, so the peer cannot read meanwhile: the socket buffers fill, then
    # the writer's queue, and the 51st queued package closes the connection.
    with pytest.raises(ConnectionClosed, match="more than 50 packages queued"):
        for _ in range(100000):
            client.notify("a.b.c", {"pad": pad})
    assert client.closed.is_set() and "not reading" in client.close_reason
    assert isinstance(failed.get(timeout=WAIT), ConnectionClosed)
    with pytest.raises(ConnectionClosed, match="is closed"):
        client.notify("a.b.c", {})
    assert conn.eof.wait(WAIT)


def test_bad_package_header_from_server_closes_with_protocol_error(peer):
    client, conn, _ = connect(peer)
    g = spawn_request(client, ENTRY, {})
    conn.recv_data()
    conn.send(hx("09 00 00 00"))
    with pytest.raises(ConnectionClosed, match="protocol error"):
        g.get(timeout=WAIT)
    assert conn.eof.wait(WAIT)


@pytest.mark.parametrize("bad", [
    hx("04 00 00 01 ff"),                                  # reserved flag bits
    hx("04 00 00 01 00"),                                  # a REQUEST from the server
    hx("04 00 00 05 07 01 63 7b 7d"),                      # push with an unknown route code
    hx("04 00 00 06 06 01 70 5b 31 5d"),                   # push body that is not an object
])
def test_undecodable_message_is_dropped_and_connection_kept(peer, bad):
    client, conn, _ = connect(peer)
    with client:
        conn.send(bad, V_PUSH)
        assert client.wait_push("onChat", timeout=WAIT) == {"msg": "hi"}
        assert client.bad_messages == 1
        assert client.is_open


def test_response_with_bad_body_fails_only_that_request(peer):
    client, conn, _ = connect(peer)
    with client:
        first = spawn_request(client, ENTRY, {})
        second = spawn_request(client, ENTRY, {})
        conn.recv_data()
        conn.recv_data()
        conn.send(package.encode(package.DATA, b"\x04\x01{not json"), response(2, {"ok": 1}))
        with pytest.raises(ZpomeloError, match="JSON"):
            first.get(timeout=WAIT)
        assert second.get(timeout=WAIT) == {"ok": 1}
        assert client.is_open


def test_request_before_open_and_second_open_are_refused(peer):
    client = Client("127.0.0.1", peer.port, transport=peer.transport)
    with pytest.raises(ConnectionClosed, match="not connected"):
        client.request(ENTRY, {}, timeout=1)
    opened, conn, _ = connect(peer)
    with opened:
        with pytest.raises(RuntimeError, match="opens once"):
            opened.open()


def test_package_over_max_body_closes():
    peer = FakePeer("tcp")
    try:
        client, conn, _ = connect(peer, max_body=64)
        conn.send(package.encode(package.DATA, b"\x06\x01p" + b"x" * 100))
        assert client.closed.wait(WAIT)
        assert "limit" in client.close_reason
    finally:
        peer.stop()


# ---- WebSocket specifics -----------------------------------------------------------------------

def test_ws_ping_gets_masked_pong():
    peer = FakePeer("ws")
    try:
        client, conn, _ = connect(peer)
        with client:
            conn.send_frame(websocket.encode_frame(b"p1", websocket.PING))
            assert conn.pongs.get(timeout=WAIT) == b"p1"
    finally:
        peer.stop()


def test_ws_server_close_frame_closes_client():
    peer = FakePeer("ws")
    try:
        client, conn, _ = connect(peer)
        g = spawn_request(client, ENTRY, {})
        conn.recv_data()
        conn.send_frame(websocket.encode_close(websocket.CLOSE_GOING_AWAY, "bye"))
        with pytest.raises(ConnectionClosed, match="1001"):
            g.get(timeout=WAIT)
    finally:
        peer.stop()


def test_ws_kick_in_the_same_read_as_the_close_frame_is_handled():
    peer = FakePeer("ws")
    try:
        client, conn, _ = connect(peer)
        conn.send_frame(websocket.encode_frame(V_KICK) + websocket.encode_close(1000, "kicked"))
        assert client.closed.wait(WAIT)
        assert client.kicked_reason == "kick"
    finally:
        peer.stop()


def test_ws_upgrade_refused():
    def handle(sock, address):
        sock.recv(4096)
        sock.sendall(websocket.error_response(403, "Forbidden"))
        sock.close()
    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    try:
        with pytest.raises(ZpomeloError, match="upgrade refused"):
            Client.connect("127.0.0.1", server.server_port, transport="ws", timeout=WAIT)
    finally:
        server.stop(timeout=0)


# ---- TLS ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cert_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                        "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip("openssl cannot make a test certificate: %s" % exc)
    return cert, key


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_tls_without_verification(cert_files, transport):
    peer = FakePeer(transport, ssl_files=cert_files)
    try:
        client, conn, _ = connect(peer, ssl=True, verify=False)
        with client:
            g = spawn_request(client, ENTRY, {"uid": "a"})
            assert conn.recv_data() == V_REQUEST
            conn.send(response(1, {"tls": 1}))
            assert g.get(timeout=WAIT) == {"tls": 1}
    finally:
        peer.stop()


def test_tls_verification_rejects_untrusted_cert_and_accepts_given_context(cert_files):
    peer = FakePeer("tcp", ssl_files=cert_files)
    try:
        with pytest.raises(gssl.SSLError):
            Client.connect("127.0.0.1", peer.port, ssl=True, timeout=WAIT)
        context = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=cert_files[0])
        context.check_hostname = False
        client, conn, _ = connect(peer, ssl=context)
        with client:
            assert client.is_open
    finally:
        peer.stop()


def test_stdlib_ssl_context_is_refused_with_advice():
    import ssl
    peer = FakePeer("tcp")
    try:
        with pytest.raises(TypeError, match="gevent.ssl.SSLContext"):
            Client.connect("127.0.0.1", peer.port, ssl=ssl.create_default_context(), timeout=WAIT)
    finally:
        peer.stop()


def test_blocking_calls_from_a_push_handler_are_refused_not_deadlocked(peer):
    client, conn, _ = connect(peer)
    with client:
        errors = AsyncResult()

        def handler(body):
            try:
                client.request(ENTRY, {}, timeout=WAIT)
            except RuntimeError as exc:
                errors.set(exc)
        client.on("onChat", handler)
        conn.send(V_PUSH)
        assert "request_async" in str(errors.get(timeout=WAIT))
        assert client.is_open


def test_callers_own_gevent_timeout_is_not_swallowed(peer):
    client, conn, _ = connect(peer)
    with client:
        deadline = gevent.Timeout(0.05)
        with pytest.raises(gevent.Timeout) as info:
            with deadline:
                client.request(ENTRY, {}, timeout=WAIT)
        assert info.value is deadline
        assert client.pending_count == 0
        conn.send(response(1, {"late": 1}))          # the late answer finds nobody and is dropped
        g = spawn_request(client, ENTRY, {})
        conn.recv_data()
        assert conn.recv_data()[5] == 2
        conn.send(response(2, {"n": 2}))
        assert g.get(timeout=WAIT) == {"n": 2}


def test_timeouts_still_fire_after_the_sweeper_idled(peer):
    client, conn, _ = connect(peer)
    with client:
        for rid in (1, 2):                           # the second request finds the sweeper idle
            with pytest.raises(RequestTimeout) as info:
                client.request(ENTRY, {}, timeout=0.05)
            assert info.value.request_id == rid
            wait_until(lambda: client._pending._sweep_interval == float("inf"), WAIT,
                       message="the request sweeper to go idle")   # idle: nothing pending
