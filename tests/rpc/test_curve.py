"""RPC and the bus with CURVE keys (config/keys/ made by rpc/security.generate): cluster members
talk; an anonymous peer and a peer with a foreign key get nothing, call nothing, and are logged."""
import dataclasses
import logging
import os

import pytest
import zmq
import zmq.green as gzmq

from zpomelo.bus import Bus
from zpomelo.errors import RpcTimeout, ServerGone
from zpomelo.rpc import RpcClient, RpcServer, security
from zpomelo.testing import wait_until


pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def keys(tmp_path):
    os.makedirs(tmp_path / "config")
    security.generate(tmp_path, curve=True)
    return security.load_keys(tmp_path)


@pytest.fixture(autouse=True)
def fresh_refusal_log():
    """The ZAP handler lives as long as the process's context and logs a peer address once a
    minute: give each test its own log, so it sees its own refusals."""
    handler = security.zap_handler(zmq.Context.instance())
    handler.refusals = security.RefusalLog(security.logger)


@pytest.fixture
def stranger(keys):
    """Knows the server key (it is public) but holds a client key pair of its own."""
    public, secret = zmq.curve_keypair()
    return dataclasses.replace(keys, client_public=public, client_secret=secret)


def refusals(caplog, kind):
    return [r.getMessage() for r in caplog.records
            if r.getMessage().startswith("refused %s from" % kind)]


def test_rpc_admits_only_the_cluster_key(keys, stranger, closing, caplog):
    calls = []
    server = closing(RpcServer("127.0.0.1", 0, lambda s, m, a: calls.append(a) or a, keys=keys).start())
    member = closing(RpcClient("member", keys=keys))
    member.add_peer("s", server.endpoint)
    assert member.call("s", "svc", "echo", ["hi"], timeout=5) == ["hi"]
    for name, who in (("anonymous", None), ("stranger", stranger)):
        client = closing(RpcClient(name, keys=who))
        client.add_peer("s", server.endpoint)
        with pytest.raises((RpcTimeout, ServerGone)):   # refused in the handshake
            client.call("s", "svc", "echo", [name], timeout=0.5)
        client.notify("s", "svc", "echo", [name])
    assert member.call("s", "svc", "echo", ["again"], timeout=5) == ["again"]
    assert calls == [["hi"], ["again"]]          # nothing from the uninvited ran
    wait_until(lambda: refusals(caplog, "a CURVE connection")
             and refusals(caplog, "a connection without the cluster's CURVE key"),
             message="both refusals logged")
    assert len(refusals(caplog, "a CURVE connection")) == 1     # once, although it reconnects
    assert "127.0.0.1" in refusals(caplog, "a CURVE connection")[0]


def test_bus_pushes_reach_only_cluster_members(keys, stranger, closing, caplog):
    got = []
    publisher = closing(Bus("chat-1", "127.0.0.1", 0, lambda kind, p: None, keys=keys).start())
    member = closing(Bus("connector-1", "127.0.0.1", 0, lambda kind, p: got.append(p), keys=keys).start())
    ctx = gzmq.Context.instance()
    spies = []
    for who in (None, stranger):
        sub = ctx.socket(gzmq.SUB)
        sub.setsockopt(gzmq.LINGER, 0)
        security.secure_client(sub, who)
        sub.setsockopt(gzmq.SUBSCRIBE, b"")
        sub.connect(publisher.endpoint)
        spies.append(sub)
    try:
        member.add_peer("chat-1", publisher.endpoint)
        wait_until(lambda: publisher.subscribed_frontends() == {"connector-1"}, message="subscription")
        wait_until(lambda: refusals(caplog, "a CURVE connection")
                 and refusals(caplog, "a connection without the cluster's CURVE key"),
                 message="both spies refused")
        for n in range(10):
            publisher.publish_global(b"g%d" % n)
            publisher.publish_frontend("connector-1", b"f%d" % n)
        wait_until(lambda: len(got) == 20, message="the member's pushes")
        for sub in spies:
            assert not sub.poll(200, gzmq.POLLIN)
        assert publisher.subscribed_frontends() == {"connector-1"}
    finally:
        for sub in spies:
            sub.close()


def test_keys_files_and_mistakes(tmp_path):
    os.makedirs(tmp_path / "config")
    written = security.generate(tmp_path, curve=True)
    keys_dir = tmp_path / "config" / "keys"
    assert {p.name for p in written} == {"cluster.secret", "server.key", "server.key_secret",
                                         "client.key", "client.key_secret"}
    for name in ("cluster.secret", "server.key_secret", "client.key_secret"):
        assert (keys_dir / name).stat().st_mode & 0o777 == 0o600
    assert (keys_dir.stat().st_mode & 0o777) == 0o700
    with pytest.raises(security.ZpomeloError, match="already holds.*--force"):
        security.generate(tmp_path)
    (keys_dir / "client.key_secret").unlink()
    with pytest.raises(security.ConfigError, match="client.key_secret is missing"):
        security.load_keys(tmp_path)
    (keys_dir / "cluster.secret").write_text("short")
    with pytest.raises(security.ConfigError, match="at least 32"):
        security.load_keys(tmp_path)
    assert security.is_loopback("127.0.0.3") and security.is_loopback("::1")
    assert not security.is_loopback("10.0.0.1") and not security.is_loopback("game.example")


def test_a_world_readable_secret_is_reported(tmp_path, caplog):
    os.makedirs(tmp_path / "config")
    security.generate(tmp_path, curve=False)
    path = tmp_path / "config" / "keys" / "cluster.secret"
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING):
        assert security.load_keys(tmp_path).secret
    assert any("chmod 600" in r.getMessage() for r in caplog.records)
