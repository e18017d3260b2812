"""One real frontend (hybrid port, dictionary, protobuf, hooks) driven by zpomelo.client and raw sockets."""
import json
import os
from gevent import socket
from gevent import subprocess

import pytest

from zpomelo.client import connection as client_module
from zpomelo.client import Client, ConnectionClosed, HandshakeError
from zpomelo.protocol import package
from zpomelo.testing import InProcessCluster, wait_until

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "apps", "frontend")

pytestmark = pytest.mark.timeout(60)
BOTH = pytest.mark.parametrize("transport", ["tcp", "ws"])


@BOTH
def test_handshake_reply_carries_hook_user_and_sys(connect, transport):
    client = connect(transport=transport, user={"name": "ann"})
    assert client.handshake_user == {"welcome": "ann"}
    sys = client.handshake_sys
    assert sys["heartbeat"] == 1 and sys["useDict"] is True and sys["useProto"] is True


@BOTH
def test_handshake_hook_failure_is_500_and_client_check_is_501(frontend, connect, transport, monkeypatch):
    port = frontend.current_server.client_port
    with pytest.raises(HandshakeError) as refused:
        Client.connect("127.0.0.1", port, transport=transport, user={"token": "bad"})
    assert refused.value.code == 500
    monkeypatch.setattr(client_module, "CLIENT_VERSION", "0.0.0")
    with pytest.raises(HandshakeError) as old:
        Client.connect("127.0.0.1", port, transport=transport)
    assert old.value.code == 501


@BOTH
def test_request_notify_and_pushes(connect, transport):
    client = connect(transport=transport)
    assert client.request("connector.entryHandler.echo", {"a": [1, 2]}) == {"a": [1, 2]}
    assert client.request("connector.entryHandler.login", {"uid": "u1"}) == {"code": 200, "uid": "u1"}
    client.notify("connector.entryHandler.note", {"n": 1})
    assert client.wait_push("onNotified", 5) == {"got": {"n": 1}}
    assert client.request("connector.entryHandler.push_me", {"body": {"x": 1}})["code"] == 200
    assert client.wait_push("onPush", 5) == {"x": 1}


@BOTH
def test_protobuf_bodies_both_ways(connect, transport):
    client = connect(transport=transport)
    answer = client.request("connector.entryHandler.proto", {"name": "zoe", "level": -5, "scores": [1, 2]})
    assert answer == {"greeting": "hello zoe", "level": -8}
    client.request("connector.entryHandler.login", {"uid": "p"})
    client.request("connector.entryHandler.push_me", {"route": "onProto", "body": {"text": "pb"}})
    assert client.wait_push("onProto", 5) == {"text": "pb"}


@BOTH
def test_kick_with_reason_closes_the_connection(connect, transport):
    client = connect(transport=transport)
    with pytest.raises(ConnectionClosed):  # the kick closes the connection before any answer
        client.request("connector.entryHandler.kick_me", {"reason": "go away"}, timeout=5)
    assert client.closed.wait(5)
    assert client.kicked_reason == "go away"


def test_session_close_callback_runs_once_with_the_uid(frontend, connect):
    client = connect()
    client.request("connector.entryHandler.login", {"uid": "leaver"})
    client.close()
    log = frontend.get("closed_log")
    wait_until(lambda: log, 5, message="the on_closed callback")
    assert len(log) == 1 and log[0][0] == "leaver"
    assert frontend.session_service.get_by_uid("leaver") == []


@BOTH
def test_errors_are_answered_and_the_connection_keeps_working(connect, transport):
    client = connect(transport=transport)
    boom = client.request("connector.entryHandler.boom", {})
    assert boom["code"] == 500 and "RuntimeError: boom" in boom["error"]
    assert client.request("connector.nope.x", {})["code"] == 500
    assert client.request("connector.entryHandler._private", {})["code"] == 500
    assert client.request("connector.entryHandler.constructor", {})["code"] == 500
    assert client.request("not-a-route", {})["code"] == 500
    hang = client.request("connector.entryHandler.hang", {}, timeout=5)
    assert hang["code"] == 500 and "timed out" in hang["error"]
    assert client.request("connector.entryHandler.echo", {"ok": 1}) == {"ok": 1}


def _raw_handshake(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    body = json.dumps({"sys": {"type": "raw", "version": "1"}}).encode()
    sock.sendall(package.encode(package.HANDSHAKE, body) + package.HANDSHAKE_ACK_PACKAGE)
    decoder = package.PackageDecoder(1 << 20)
    got = []
    while len(got) < 2:
        data = sock.recv(65536)
        assert data, "server closed during the handshake"
        got.extend(decoder.feed(data))
    assert got[0][0] == package.HANDSHAKE and json.loads(got[0][1])["code"] == 200
    assert got[1] == (package.HEARTBEAT, b"")
    return sock, decoder


def _recv_packages(sock, decoder, count):
    got = []
    while len(got) < count:
        data = sock.recv(65536)
        if not data:
            return got
        got.extend(decoder.feed(data))
    return got


def test_bad_json_gets_500_and_the_connection_lives(frontend):
    sock, decoder = _raw_handshake(frontend.current_server.client_port)
    route = b"connector.entryHandler.echo"
    bad = bytes([0x00, 0x05, len(route)]) + route + b"{not json"
    good = bytes([0x00, 0x06, len(route)]) + route + b'{"a":1}'
    sock.sendall(package.encode(package.DATA, bad) + package.encode(package.DATA, good))
    first, second = _recv_packages(sock, decoder, 2)
    assert first[1] == bytes([0x04, 0x05]) + b'{"code":500}'
    assert second[1] == bytes([0x04, 0x06]) + b'{"a":1}'
    sock.close()


def test_heartbeat_is_echoed_and_a_silent_client_is_closed(frontend):
    sock, decoder = _raw_handshake(frontend.current_server.client_port)
    sock.sendall(package.HEARTBEAT_PACKAGE)
    assert _recv_packages(sock, decoder, 1) == [(package.HEARTBEAT, b"")]
    sock.settimeout(10)
    assert sock.recv(100) == b""  # heartbeat 1 s -> closed after ~2 s of silence, no KICK
    sock.close()


def test_oversized_package_closes_only_that_connection(frontend, connect):
    bystander = connect()
    sock, decoder = _raw_handshake(frontend.current_server.client_port)
    sock.sendall(bytes([package.DATA, 0x10, 0x00, 0x00]) + b"x" * 1000)  # 1 MiB announced, 4 KiB allowed
    sock.settimeout(5)
    assert sock.recv(100) == b""
    assert bystander.request("connector.entryHandler.echo", {"alive": True}) == {"alive": True}


@pytest.fixture
def tls_files(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


@BOTH
def test_tls_on_the_same_port(tls_files, monkeypatch, transport):
    monkeypatch.setenv("TEST_SSL_CERT", tls_files[0])
    monkeypatch.setenv("TEST_SSL_KEY", tls_files[1])
    cluster = InProcessCluster(APP_DIR, "test").start()
    try:
        port = cluster.client_port("connector-1")
        client = Client.connect("127.0.0.1", port, transport=transport, ssl=True, verify=False)
        assert client.request("connector.entryHandler.echo", {"secure": 1}) == {"secure": 1}
        client.close()
        plain = socket.create_connection(("127.0.0.1", port), timeout=5)
        plain.sendall(package.encode(package.HANDSHAKE, b'{"sys":{}}'))
        plain.settimeout(5)
        try:
            assert not plain.recv(100).startswith(b"\x01")  # no cleartext handshake reply
        except (ConnectionResetError, socket.timeout):
            pass
        plain.close()
    finally:
        cluster.stop()


def test_components_start_after_sockets_and_stop_before_them():
    cluster = InProcessCluster(APP_DIR, "test").start()
    app = cluster["connector-1"]
    log = app.get("component_log")
    assert log == [("start", "starting"), ("after_start", "started")]
    cluster.stop()
    assert log[-1] == ("stop", "stopping") and app.state == "stopped"
