"""A real server process refuses every command of a master older than the newest it knows.

The test plays two masters with plain ROUTER sockets and writes their leader records into a real
ZooKeeper itself: master A (epoch 5), then master B (epoch 6). The server (the chat example's
chat-server-1, `python -m zpomelo.server`) follows the records, and takes commands only from the
current epoch: a late "kill" of A's, or a message without an epoch, changes nothing."""
import os
import subprocess
import sys
import time

import pytest
import zmq
from kazoo.client import KazooClient

from zpomelo.master import ha_config, procinfo, wire
from zpomelo.master.supervisor import child_env
from zpomelo.rpc import security

from .conftest import ENV

pytestmark = pytest.mark.timeout(90)


class FakeMaster:
    """Holds the cluster secret (a real master would): it seals and opens frames with it."""

    def __init__(self, epoch, secret):
        self.epoch = epoch
        self.sealer = wire.Sealer(secret, wire.FROM_MASTER, wire.TO_MASTER)
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind("tcp://127.0.0.1:0")
        self.port = int(self.sock.getsockopt(zmq.LAST_ENDPOINT).decode().rsplit(":", 1)[1])
        self.server = None          # the registered server's identity

    def record(self):
        return {"id": "fake-%d" % self.epoch, "host": "127.0.0.1", "port": self.port,
                "endpoint": "tcp://127.0.0.1:%d" % self.port, "epoch": self.epoch,
                "pid": os.getpid(), "state": "running"}

    def recv(self, timeout=10.0, kind=None):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "nothing (%s) from the server within %.0f s" % (kind, timeout)
            if not self.sock.poll(left * 1000):
                continue
            identity, frame = self.sock.recv_multipart()
            msg = self.sealer.open(frame)
            if kind is None or msg[0] == kind:
                return identity, msg

    def welcome_registration(self):
        identity, msg = self.recv(kind="register")
        assert msg[2] == self.epoch         # the server tells us the epoch it follows
        self.server = identity
        self.send("welcome", [msg[1]], True, self.epoch)
        return msg[1]

    def send(self, *parts):
        self.sock.send_multipart([self.server, self.sealer.seal(*parts)])

    def command(self, req_id, name, epoch):
        parts = ["cmd", req_id, name, None] + ([epoch] if epoch is not None else [])
        self.send(*parts)
        _, msg = self.recv(kind="result")
        assert msg[1] == req_id
        return msg[2], msg[3]

    def close(self):
        self.sock.close()


@pytest.fixture
def zk(ha_project):
    cfg = ha_config.load(ha_project, ENV)
    client = KazooClient(hosts=cfg.hosts)
    client.start(timeout=10)
    yield cfg, client
    client.stop()
    client.close()


def publish(zk, master):
    cfg, client = zk
    client.ensure_path(cfg.path)
    data = ha_config.encode_leader(master.record())
    if client.exists(cfg.leader_path):
        client.set(cfg.leader_path, data)
    else:
        client.create(cfg.leader_path, data)


def test_server_obeys_only_the_newest_master(ha_project, zk, tmp_path):
    secret = security.load_keys(ha_project).secret
    a, b = FakeMaster(5, secret), FakeMaster(6, secret)
    publish(zk, a)
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "zpomelo.server", "--dir", str(ha_project), "--env", ENV,
         "--id", "chat-server-1", "--master", "tcp://127.0.0.1:1"],
        stdout=log, stderr=log, env=child_env(), stdin=subprocess.DEVNULL)
    try:
        assert a.welcome_registration()["id"] == "chat-server-1"
        assert a.command(1, "info", 5)[0] is True
        ok, why = a.command(2, "info", 4)
        assert ok is False and "older than the current one (5)" in why
        ok, why = a.command(3, "info", None)        # no epoch at all: refused too
        assert ok is False
        a.send("cmd", 0, "kill", None, 4)           # a late kill from an older master
        a.send("remove", "chat-server-2", 4)
        assert a.command(4, "info", 5)[0] is True and server.poll() is None

        publish(zk, b)                              # B leads: the server moves there
        assert b.welcome_registration()["id"] == "chat-server-1"
        publish(zk, a)                              # A writes its stale record again: ignored
        a.send("cmd", 0, "kill", None, 5)           # and commands: never reaches or is refused
        assert b.command(5, "info", 6)[0] is True
        ok, _ = b.command(6, "info", 5)
        assert ok is False
        assert server.poll() is None and procinfo.is_alive(server.pid)
        assert not a.sock.poll(300)                 # nothing came back to A

        b.send("cmd", 0, "kill", None, 6)           # the current master is obeyed
        assert server.wait(timeout=10) != 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()
        a.close()
        b.close()
    text = (tmp_path / "server.log").read_text()
    assert "refused 'cmd' from a master with epoch 4" in text
    assert "refused 'remove' from a master with epoch 4" in text
