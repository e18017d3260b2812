"""The connector through real sockets on 127.0.0.1: TCP and WebSocket on one port."""
import json
import shutil
import subprocess
import time

import gevent
import pytest
from gevent import socket

from zpomelo.connector import ConnectorConfig, State
from zpomelo.protocol import message, package
from zpomelo.protocol import websocket as ws
from zpomelo.protocol.codec import ServerCodec
from zpomelo.protocol.dictionary import RouteDictionary

from zpomelo.testing import wait_until

from .helpers import RawClient, start_connector

TRANSPORTS = ["tcp", "ws"]


@pytest.fixture
def server(request):
    """A factory: server(**config) -> (connector, frontend); stopped after the test."""
    started = []

    def make(**config):
        connector, frontend = start_connector(**config)
        started.append(connector)
        return connector, frontend

    yield make
    for connector in started:
        connector.stop(timeout=2.0)


def _only_conn(connector):
    wait_until(lambda: len(connector.connections) == 1, message="one registered connection")
    return next(iter(connector.connections.values()))


# ---- the happy path -----------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_handshake_request_response_notify(server, transport):
    connector, frontend = server(heartbeat=3)
    client = RawClient(connector.port, transport)
    reply = client.handshake(user={"name": "ann"})
    assert reply == {"code": 200, "sys": {"heartbeat": 3}, "user": {"hello": "ann"}}
    conn = _only_conn(connector)
    assert conn.transport == transport and conn.state is State.WORKING
    assert conn.address[0] == "127.0.0.1"

    assert client.request(1, "test.h.echo", {"x": 1}) == {"code": 200, "echo": {"x": 1}}
    assert client.request(300, "test.h.echo", {"y": "é"}) == {"code": 200, "echo": {"y": "é"}}
    client.send_notify("test.h.note", {"n": 5})
    wait_until(lambda: frontend.notifies, message="the notify")
    assert frontend.notifies == [("test.h.note", {"n": 5})]
    assert frontend.requests[-1][1] == 0  # notifies reach on_request with id 0
    client.close()
    wait_until(lambda: conn.id in frontend.closed, message="on_close")
    assert frontend.closed[conn.id] == "client closed"
    wait_until(lambda: connector.count == 0, message="connection count back to 0")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_push_from_the_frontend(server, transport):
    connector, _ = server()
    client = RawClient(connector.port, transport)
    client.handshake()
    client.send_request(7, "test.h.push", {"count": 3})
    got = [client.recv_data() for _ in range(4)]
    assert [(m[0], m[2], m[3]["i"]) for m in got[:3]] == [(message.PUSH, "onPush", i) for i in range(3)]
    assert got[3][:2] == (message.RESPONSE, 7)


def test_handshake_reply_carries_dictionary_and_protos_fields(server):
    dictionary = RouteDictionary(["test.h.echo", "test.h.push"], ["onPush"])
    connector, _ = server(heartbeat=2, codec=ServerCodec(dictionary=dictionary))
    client = RawClient(connector.port)
    reply = client.handshake(sys={"type": "t", "version": "1"})
    assert reply["sys"]["heartbeat"] == 2
    assert reply["sys"]["useDict"] is True
    assert reply["sys"]["routeToCode"]["test.h.echo"] == 1
    again = RawClient(connector.port).handshake(sys={"dictVersion": dictionary.version})
    assert again["sys"] == {"heartbeat": 2, "useDict": True}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ack_in_the_same_segment_as_the_handshake(server, transport):
    connector, _ = server(heartbeat=5)
    client = RawClient(connector.port, transport)
    from zpomelo.protocol import handshake
    client.send_raw(handshake.encode_client_request({"type": "t"}) + package.HANDSHAKE_ACK_PACKAGE)
    ptype, body = client.recv_package()
    assert ptype == package.HANDSHAKE and json.loads(body)["code"] == 200
    assert client.recv_package() == (package.HEARTBEAT, b"")
    assert client.request(1, "test.h.echo", {}) == {"code": 200, "echo": {}}


def test_several_packages_in_one_ws_message_and_replies_coalesced(server):
    connector, _ = server(heartbeat=5)
    client = RawClient(connector.port, "ws")
    client.handshake()
    before = client.ws_messages
    batch = b"".join(package.encode(package.DATA, message.encode_request(i, "test.h.echo", b'{"i":%d}' % i))
                     for i in (1, 2, 3)) + package.HEARTBEAT_PACKAGE
    client.send_raw(batch)
    got = [client.recv_package() for _ in range(4)]
    assert [message.decode(body).id for ptype, body in got[:3]] == [1, 2, 3]
    assert got[3] == (package.HEARTBEAT, b"")
    # The writer drained all four replies queued during one read into one WebSocket message.
    assert client.ws_messages - before == 1


def test_fragmented_ws_message_and_ping(server):
    connector, _ = server()
    client = RawClient(connector.port, "ws")
    client.handshake()
    data = package.encode(package.DATA, message.encode_request(9, "test.h.echo", b'{"f":1}'))
    client.send_frame(ws.encode_frame(data[:5], ws.BINARY, mask=True, fin=False)
                      + ws.encode_frame(b"hi", ws.PING, mask=True)
                      + ws.encode_frame(data[5:], ws.CONTINUATION, mask=True))
    assert client.recv_package() == ("ws-%d" % ws.PONG, b"hi")
    assert client.recv_data()[3] == {"code": 200, "echo": {"f": 1}}


def test_text_messages_and_ping_flood(server):
    connector, _ = server()
    client = RawClient(connector.port, "ws")
    client.handshake()
    data = package.encode(package.DATA, message.encode_request(3, "test.h.echo", b'{"t":1}'))
    pings = b"".join(ws.encode_frame(b"%d" % i, ws.PING, mask=True) for i in range(200))
    client.send_frame(pings + ws.encode_frame(data, ws.TEXT, mask=True))
    seen = []
    while not seen or seen[-1][0] != package.DATA:
        seen.append(client.recv_package())
    pongs = [body for kind, body in seen if kind == "ws-%d" % ws.PONG]
    assert 1 <= len(pongs) < 200 and pongs[-1] == b"199"  # only the latest ping needs a pong
    assert message.decode(seen[-1][1]).id == 3


def test_ws_close_frame_closes_the_connection(server):
    connector, frontend = server()
    client = RawClient(connector.port, "ws")
    client.handshake()
    client.send_frame(ws.encode_frame(ws.CLOSE_NORMAL.to_bytes(2, "big"), ws.CLOSE, mask=True))
    seen = client.wait_closed()
    assert seen and seen[-1][0] == "ws-close" and ws.parse_close(seen[-1][1])[0] == ws.CLOSE_NORMAL
    wait_until(lambda: frontend.closed, message="on_close")


# ---- handshake failures ---------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("body", [b"{not json", b'{"user":{}}', b'[1,2]', b"\xff\xfe"])
def test_bad_handshake_gets_500_and_is_closed(server, transport, body):
    connector, frontend = server()
    client = RawClient(connector.port, transport)
    client.send_raw(package.encode(package.HANDSHAKE, body))
    ptype, reply = client.recv_package()
    assert ptype == package.HANDSHAKE and json.loads(reply) == {"code": 500}
    client.wait_closed()
    assert client.eof
    wait_until(lambda: frontend.closed, message="on_close")
    assert RawClient(connector.port, transport).handshake()["code"] == 200


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_check_failure_gets_501_and_is_closed(server, transport):
    connector, frontend = server()
    client = RawClient(connector.port, transport)
    reply = client.handshake(user={"old_client": True})
    assert reply == {"code": 501}
    client.wait_closed()
    wait_until(lambda: frontend.closed, message="on_close")
    assert "501" in next(iter(frontend.closed.values()))


def test_failing_handshake_hook_gets_500(server):
    connector, _ = server()
    client = RawClient(connector.port)
    assert client.handshake(user={"explode": True}) == {"code": 500}
    client.wait_closed()
    assert client.eof


# ---- heartbeats -----------------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_heartbeat_answered_at_once_and_keeps_the_client(server, transport):
    connector, frontend = server(heartbeat=0.1, timeout=0.4)
    client = RawClient(connector.port, transport)
    client.handshake()
    for _ in range(8):  # 0.8 s of 0.1 s heartbeats: twice the timeout
        gevent.sleep(0.1)
        client.send_raw(package.HEARTBEAT_PACKAGE)
        assert client.recv_package() == (package.HEARTBEAT, b"")
    assert client.request(2, "test.h.echo", {}) == {"code": 200, "echo": {}}
    assert not frontend.closed


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_silent_client_is_closed_after_the_timeout(server, transport):
    connector, frontend = server(heartbeat=0.1, timeout=0.3)
    client = RawClient(connector.port, transport)
    client.handshake()
    client.wait_closed()
    wait_until(lambda: frontend.closed, message="on_close")
    assert list(frontend.closed.values()) == ["heartbeat timeout"]
    wait_until(lambda: connector.count == 0, message="count back to 0")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_server_stalled_past_the_timeout_reads_the_heartbeats_that_came_meanwhile(server,
                                                                                    transport):
    """A loaded machine can keep the server process off the CPU for longer than the heartbeat
    timeout while its clients go on beating. When it runs again its due deadline timer runs
    before its reads (libev invokes the newest pending watchers first): the deadline must find
    the heartbeats waiting and let them be read, not close a client that was never silent."""
    # a timeout of 1 s, so that what follows the stall fits in it on a loaded machine
    connector, frontend = server(heartbeat=0.25, timeout=1.0)
    client = RawClient(connector.port, transport)
    client.handshake()
    beat = ws.encode_frame(package.HEARTBEAT_PACKAGE, mask=True) if transport == "ws" \
        else package.HEARTBEAT_PACKAGE
    raw = client.sock._sock         # the OS socket: its send never yields to the server
    for _ in range(6):              # the process stalls for 1.5 s, past the timeout ...
        time.sleep(0.25)            # (a blocking sleep: nothing runs on the hub)
        raw.send(beat)              # ... while the client beats every 0.25 s
    for _ in range(6):
        assert client.recv_package() == (package.HEARTBEAT, b"")
    assert client.request(2, "test.h.echo", {}) == {"code": 200, "echo": {}}
    assert not frontend.closed
    client.wait_closed()            # and a client that does go silent is still closed
    assert list(frontend.closed.values()) == ["heartbeat timeout"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_server_stalled_with_its_clients_gives_them_a_period_before_judging(server, transport):
    """A cluster run in one process stalls with its clients: nothing is sent meanwhile, and
    the deadline's timer runs over half a period late. The process cannot tell whether the
    client went silent, so the client gets one more period to beat."""
    connector, frontend = server(heartbeat=0.25, timeout=1.0)   # 1 s: room for a loaded machine
    client = RawClient(connector.port, transport)
    client.handshake()
    time.sleep(1.6)                 # the process stalls (a blocking sleep), the client with it
    gevent.sleep(0.01)              # the hub runs the overdue deadline first
    client.send_raw(package.HEARTBEAT_PACKAGE)      # the client, running again, beats at once
    assert client.recv_package() == (package.HEARTBEAT, b"")
    assert client.request(2, "test.h.echo", {}) == {"code": 200, "echo": {}}
    assert not frontend.closed
    client.wait_closed()            # and a client that does go silent is still closed
    assert list(frontend.closed.values()) == ["heartbeat timeout"]


def test_no_timeout_when_disconnect_on_timeout_is_off(server):
    connector, frontend = server(heartbeat=0.05, disconnect_on_timeout=False)
    client = RawClient(connector.port)
    client.handshake()
    gevent.sleep(0.3)
    assert client.request(1, "test.h.echo", {}) == {"code": 200, "echo": {}}
    assert not frontend.closed


def test_handshake_timeout_closes_a_client_that_never_acks(server):
    connector, frontend = server(handshake_timeout=0.2)
    idle = RawClient(connector.port)            # never sends anything
    no_ack = RawClient(connector.port)
    assert no_ack.handshake(ack=False)["code"] == 200
    idle.wait_closed()
    no_ack.wait_closed()
    wait_until(lambda: list(frontend.closed.values()) == ["handshake timeout"], message="on_close")
    wait_until(lambda: connector.count == 0, message="count back to 0")


# ---- kick, close, stop ----------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_kick_sends_reason_then_closes(server, transport):
    connector, frontend = server()
    client = RawClient(connector.port, transport)
    client.handshake()
    client.send_request(4, "test.h.kick", {"reason": "kick"})
    seen = client.wait_closed()
    assert seen[0] == (package.KICK, b'{"reason":"kick"}')
    wait_until(lambda: frontend.closed, message="on_close")
    assert list(frontend.closed.values()) == ["kicked: kick"]
    assert frontend.close_calls == 1


def test_slow_client_over_the_write_queue_limit_is_closed(server):
    connector, frontend = server(write_queue_limit=50000)
    client = RawClient(connector.port)
    client.handshake()
    # Sends go straight to the kernel while it takes them, so push well past the socket buffers.
    client.send_request(1, "test.h.push", {"count": 20000, "pad": "x" * 1000})
    client.wait_closed()
    wait_until(lambda: frontend.closed, message="on_close")
    assert list(frontend.closed.values()) == ["write queue overflow"]
    assert RawClient(connector.port).handshake()["code"] == 200


def test_refused_by_the_frontend(server):
    connector, frontend = server()
    frontend.refuse_connect = True
    client = RawClient(connector.port)
    client.send_raw(b"\x01")
    client.wait_closed()
    assert client.eof and not frontend.closed  # never accepted: no on_close owed


def test_max_connections_and_blacklist(server):
    connector, _ = server(max_connections=1, blacklist=lambda ip: ip == "10.9.9.9")
    first = RawClient(connector.port)
    first.handshake()
    second = RawClient(connector.port)
    second.wait_closed()
    assert second.eof
    assert first.request(1, "test.h.echo", {}) == {"code": 200, "echo": {}}

    blocked, _ = server(blacklist=["127.0.0.1"])
    client = RawClient(blocked.port)
    client.wait_closed()
    assert client.eof


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stop_closes_every_connection(server, transport):
    connector, frontend = server()
    clients = [RawClient(connector.port, transport) for _ in range(3)]
    for client in clients:
        client.handshake()
    connector.stop(timeout=2.0)
    for client in clients:
        client.wait_closed()
        assert client.eof
    assert sorted(frontend.closed.values()) == ["server stopping"] * 3
    assert connector.count == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", connector.port), timeout=1.0)


# ---- bad input never takes the server down ---------------------------------------------------

@pytest.fixture
def healthy(server):
    """A server plus a check that it still serves a fresh client on both transports."""
    connector, frontend = server(max_body=1024)

    def still_serving():
        for transport in TRANSPORTS:
            client = RawClient(connector.port, transport)
            client.handshake()
            assert client.request(5, "test.h.echo", {"ok": 1}) == {"code": 200, "echo": {"ok": 1}}
            client.close()
    return connector, frontend, still_serving


@pytest.mark.parametrize("garbage", [b"\xff\x00\x00\x00", b"\x00\x00\x00\x01", b"\x07hello",
                                     b"\x04\x00"  + b"\xff" * 30])
def test_garbage_bytes_close_the_connection(healthy, garbage):
    connector, _, still_serving = healthy
    client = RawClient(connector.port)
    client.send_raw(garbage)
    client.wait_closed()
    assert client.eof
    still_serving()


def test_garbage_after_the_handshake_closes_the_connection(healthy):
    connector, frontend, still_serving = healthy
    client = RawClient(connector.port, "ws")
    client.handshake()
    client.send_raw(b"\x09\x00\x00\x00")
    seen = client.wait_closed()
    assert seen[-1][0] == "ws-close" and ws.parse_close(seen[-1][1])[0] == ws.CLOSE_PROTOCOL_ERROR
    wait_until(lambda: frontend.closed, message="on_close")
    assert next(iter(frontend.closed.values())).startswith("protocol error")
    still_serving()


@pytest.mark.parametrize("request_bytes", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Key: a\r\nSec-WebSocket-Version: 8\r\n\r\n",
])
def test_http_request_that_is_not_an_upgrade_gets_400(healthy, request_bytes):
    connector, frontend, still_serving = healthy
    client = RawClient(connector.port, connect=False).connect()
    client.sock.sendall(request_bytes)
    response = b""
    while True:
        data = client.sock.recv(4096)
        if not data:
            break
        response += data
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert not frontend.connected
    still_serving()


def test_oversized_http_head_is_refused(healthy):
    connector, _, still_serving = healthy
    client = RawClient(connector.port)
    client.sock.sendall(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 10000 + b"\r\n")
    assert client.sock.recv(4096).startswith(b"HTTP/1.1 431")
    still_serving()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_package_over_the_size_limit_closes_the_connection(healthy, transport):
    connector, frontend, still_serving = healthy
    client = RawClient(connector.port, transport)
    client.handshake()
    if transport == "tcp":
        client.send_raw(b"\x04\x00\x04\x01")  # a header announcing 1025 bytes; nothing more needed
    else:
        client.send_raw(package.encode(package.DATA, b"x" * 2000))
    seen = client.wait_closed()
    if transport == "ws":
        assert ws.parse_close(seen[-1][1])[0] == ws.CLOSE_TOO_BIG
    wait_until(lambda: frontend.closed, message="on_close")
    assert "exceeds" in next(iter(frontend.closed.values()))
    still_serving()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_data_and_heartbeat_before_the_handshake_are_ignored(healthy, transport):
    connector, frontend, _ = healthy
    client = RawClient(connector.port, transport)
    client.send_request(1, "test.h.echo", {"early": True})
    client.send_raw(package.HEARTBEAT_PACKAGE + package.HANDSHAKE_ACK_PACKAGE)
    assert client.handshake()["code"] == 200
    assert client.request(2, "test.h.echo", {}) == {"code": 200, "echo": {}}
    assert [r[1] for r in frontend.requests] == [2]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_second_handshake_is_ignored(healthy, transport):
    connector, frontend, _ = healthy
    from zpomelo.protocol import handshake
    client = RawClient(connector.port, transport)
    client.handshake()
    client.send_raw(handshake.encode_client_request({"type": "again"}))
    assert client.request(3, "test.h.echo", {}) == {"code": 200, "echo": {}}  # no second reply first
    assert not frontend.closed


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bad_json_body_gets_500_and_keeps_the_connection(healthy, transport):
    connector, frontend, _ = healthy
    client = RawClient(connector.port, transport)
    client.handshake()
    client.send_raw(package.encode(package.DATA, message.encode_request(6, "test.h.echo", b"{oops")))
    mtype, msg_id, _, body = client.recv_data()
    assert (mtype, msg_id, body) == (message.RESPONSE, 6, {"code": 500})
    client.send_raw(package.encode(package.DATA, message.encode_notify("test.h.note", b"[broken")))
    assert client.request(7, "test.h.echo", {"a": 1}) == {"code": 200, "echo": {"a": 1}}
    assert not frontend.closed and frontend.notifies == []


def test_bad_messages_are_dropped_and_the_connection_kept(server):
    codec = ServerCodec(dictionary=RouteDictionary(["test.h.echo"]))
    connector, frontend = server(codec=codec)
    client = RawClient(connector.port)
    client.handshake()
    client.send_raw(package.encode(package.DATA, message.encode_request(1, 999, b"{}")))  # unknown code
    client.send_raw(package.encode(package.DATA, b"\x30\x01\x00"))          # bad flag
    client.send_raw(package.encode(package.DATA, message.encode_push("x.y.z", b"{}")))  # server-only type
    client.send_raw(package.encode(package.DATA, b""))                       # empty message
    assert client.request(2, 1, {"d": 1}) == {"code": 200, "echo": {"d": 1}}   # dictionary code 1
    assert [r[1:3] for r in frontend.requests] == [(2, "test.h.echo")]
    assert not frontend.closed


@pytest.mark.timeout(60)
def test_a_thousand_connections_dropped_mid_handshake(server):
    connector, frontend = server(handshake_timeout=30)
    from zpomelo.protocol import handshake
    full_handshake = handshake.encode_client_request({"type": "t"})
    partials = [b"", full_handshake[:3], full_handshake[:10], b"GET / HTTP/1.1\r\nHost:",
                full_handshake]
    socks = []
    for i in range(1000):
        sock = socket.create_connection(("127.0.0.1", connector.port), timeout=5.0)
        data = partials[i % len(partials)]
        if data:
            sock.sendall(data)
        socks.append(sock)
    wait_until(lambda: connector.count >= 990, timeout=20, message="the connections to be accepted")
    for sock in socks:
        sock.close()
    wait_until(lambda: connector.count == 0, timeout=20, message="count back to 0")
    assert connector.pending == 0 and not connector.connections
    client = RawClient(connector.port, "ws")
    client.handshake()
    assert client.request(1, "test.h.echo", {}) == {"code": 200, "echo": {}}


# ---- TLS ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return {"certfile": str(cert), "keyfile": str(key)}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tls_for_both_transports(server, certificate, transport):
    connector, frontend = server(ssl=certificate, heartbeat=1)
    client = RawClient(connector.port, transport, tls=True)
    assert client.handshake()["sys"] == {"heartbeat": 1}
    assert client.request(1, "test.h.echo", {"tls": True}) == {"code": 200, "echo": {"tls": True}}
    assert _only_conn(connector).transport == transport
    client.close()
    wait_until(lambda: frontend.closed, message="on_close")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tls_kick_and_heartbeat_timeout(server, certificate, transport):
    connector, frontend = server(ssl=certificate, heartbeat=0.1, timeout=0.3)
    kicked = RawClient(connector.port, transport, tls=True)
    kicked.handshake()
    kicked.send_request(1, "test.h.kick", {"reason": "tls"})
    assert kicked.wait_closed()[0] == (package.KICK, b'{"reason":"tls"}')
    silent = RawClient(connector.port, transport, tls=True)
    silent.handshake()
    silent.wait_closed()
    wait_until(lambda: len(frontend.closed) == 2, message="both on_close calls")
    assert sorted(frontend.closed.values()) == ["heartbeat timeout", "kicked: tls"]


def test_plain_client_on_a_tls_port_is_dropped(server, certificate):
    connector, frontend = server(ssl=certificate)
    client = RawClient(connector.port)
    client.sock.sendall(package.HANDSHAKE_ACK_PACKAGE * 100)
    client.wait_closed()
    assert client.eof and not frontend.connected
    assert RawClient(connector.port, "ws", tls=True).handshake()["code"] == 200


# ---- configuration --------------------------------------------------------------------------

def test_config_from_pomelo_keys():
    codec = ServerCodec()
    check = lambda kind, version: True  # noqa: E731
    config = ConnectorConfig.from_pomelo({
        "heartbeat": 10, "timeout": 25, "useDict": True, "useProtobuf": True,
        "disconnectOnTimeout": False, "setNoDelay": False, "maxConnections": 50,
        "ssl": {"cert": "/c.pem", "key": "/k.pem"}, "checkClient": check}, codec)
    assert (config.heartbeat, config.timeout, config.heartbeat_timeout) == (10, 25, None)
    assert config.use_dict and config.use_protobuf and config.codec is codec
    assert config.no_delay is False and config.max_connections == 50
    assert config.ssl == {"certfile": "/c.pem", "keyfile": "/k.pem"}
    assert config.check_client is check
    default = ConnectorConfig.from_pomelo({"heartbeat": 3})
    assert default.heartbeat_timeout == 6 and default.no_delay is True and default.max_body == 65536


def test_config_rejects_bad_values():
    from zpomelo.errors import ConfigError
    with pytest.raises(ConfigError):
        ConnectorConfig(heartbeat=0)
    with pytest.raises(ConfigError):
        ConnectorConfig(max_body=1 << 25)
    with pytest.raises(ConfigError):
        ConnectorConfig(ssl={"keyfile": "k"})
