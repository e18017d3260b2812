"""Uninvited peers on the master port: a real master in this process, real fake-server processes,
real ZeroMQ sockets as the intruders. Each refusal is answered with nothing that helps, logged
once per peer address and kind, and leaves membership, routing and processes as they were."""
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time

import msgpack
import pytest
import zmq
import zmq.green as gzmq

from zpomelo.master import procinfo, wire
from zpomelo.master.throttle import LoginThrottle
from zpomelo.rpc import security
from zpomelo.testing import wait_until

from .conftest import server

pytestmark = pytest.mark.timeout(90)


class Intruder:
    """A DEALER on the master port from this process (green, so the master keeps running)."""

    def __init__(self, endpoint, secret=None, curve_keys=None):
        self.ctx = gzmq.Context()
        self.sock = self.ctx.socket(gzmq.DEALER)
        self.sock.setsockopt(gzmq.LINGER, 0)
        if curve_keys is not None:
            security.secure_client(self.sock, curve_keys)
        self.sock.connect(endpoint)
        self.sealer = wire.Sealer(secret, wire.TO_MASTER, wire.FROM_MASTER) if secret else None

    def send(self, *parts):
        """Queue a message; False when ZeroMQ has no connection to queue it on (refused)."""
        try:
            self.sock.send(self.sealer.seal(*parts) if self.sealer else wire.pack(*parts),
                           gzmq.NOBLOCK)
            return True
        except gzmq.Again:
            return False

    def recv(self, timeout=5.0):
        """The answer frame, or None when nothing came within timeout."""
        if not self.sock.poll(timeout * 1000, gzmq.POLLIN):
            return None
        return self.sock.recv()

    def close(self):
        self.sock.close()
        self.ctx.term()


def cluster_view(m):
    """Membership and routing as the master and every server see them; the pids it would signal."""
    members = {sid: (dict(mb.record), mb.identity) for sid, mb in m.registry.members.items()}
    seen = {sid: m.command(sid, "info")["members"] for sid in sorted(m.registry.members)}
    pids = {sid: (p.pid, p.explicit_stop, p.state) for sid, p in m.supervisor.procs.items()}
    return members, seen, pids


def refusal_lines(caplog, kind):
    return [r for r in caplog.records
            if r.levelno == logging.WARNING and r.getMessage().startswith("refused %s from" % kind)]


@pytest.fixture
def bystander():
    """An unrelated process whose pid an intruder claims; it must survive everything."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


UNINVITED = [
    ("register", {"id": "evil-1", "serverType": "chat", "host": "127.0.0.1", "port": 1}),
    ("register", {"id": "chat-1", "serverType": "chat", "host": "127.0.0.1", "port": 2}),
    ("unregister", "chat-1"),
    ("hb", "chat-1"),
    ("result", 1, True, None),
    ("admin", "admin", "s3cret", "stop", {"ids": ["chat-1"]}),
]


def test_anonymous_and_wrong_secret_messages_change_nothing(run_master, bystander, caplog):
    caplog.set_level(logging.INFO)
    m = run_master({"connector": [server("connector-1", "connector", frontend=True)],
                    "chat": [server("chat-1", "chat", **{"auto-restart": True})]})
    assert m.ready.wait(20) and m.start_error is None
    wait_until(lambda: m.command("connector-1", "info")["members"] == ["chat-1", "connector-1"])
    before = cluster_view(m)
    wrong = os.urandom(32).hex().encode()
    for intruder in (Intruder(m.endpoint), Intruder(m.endpoint, secret=wrong)):
        try:
            for msg in UNINVITED + [("register", dict(UNINVITED[1][1], pid=bystander.pid))]:
                intruder.send(*msg)
                answer = msgpack.unpackb(intruder.recv(), raw=False)
                assert answer == ["error", wire.UNAUTHENTICATED_MESSAGE]
        finally:
            intruder.close()
    assert cluster_view(m) == before
    assert "evil-1" not in m.supervisor.procs
    # every kind refused and logged with the peer address, once although it came 2-3 times
    for kind in ("register", "unregister", "hb", "result", "admin"):
        lines = refusal_lines(caplog, "an unauthenticated %r" % kind)
        assert len(lines) == 1, (kind, [r.getMessage() for r in lines])
        assert "127.0.0.1" in lines[0].getMessage()
    # the cluster still works, and `stop` never reaches the pid an intruder claimed
    m.control.stop_servers(list(m.supervisor.procs), graceful=True, timeout=5.0)
    assert bystander.poll() is None and procinfo.is_alive(bystander.pid)


def test_replayed_and_stale_frames_are_refused(run_master, tmp_path, caplog, monkeypatch):
    m = run_master({"chat": [server("chat-1", "chat")]})
    assert m.ready.wait(20)
    member = Intruder(m.endpoint, secret=security.load_keys(tmp_path).secret)
    try:
        frame = member.sealer.seal("admin", "admin", "s3cret", "status", {})
        member.sock.send(frame)
        assert member.sealer.open(member.recv())[0] == "ok"
        member.sock.send(frame)                       # the same frame again: a replay
        assert wire.unpack(member.recv()) == ["error", wire.UNAUTHENTICATED_MESSAGE]
        assert refusal_lines(caplog, "an unauthenticated 'admin'")[0].getMessage().endswith(
            "replayed message (its nonce was seen already)")
        real_time = time.time
        monkeypatch.setattr(wire.time, "time", lambda: real_time() - 2 * wire.MAX_SKEW)
        old = member.sealer.seal("unregister", "chat-1")      # sealed two windows ago
        monkeypatch.setattr(wire.time, "time", real_time)
        member.sock.send(old)
        assert wire.unpack(member.recv()) == ["error", wire.UNAUTHENTICATED_MESSAGE]
    finally:
        member.close()
    assert "chat-1" in m.registry and not m.supervisor.procs["chat-1"].explicit_stop
    assert any("timestamp -120" in r.getMessage() for r in refusal_lines(
        caplog, "an unauthenticated 'unregister'"))


def test_curve_master_refuses_peers_without_the_cluster_key(run_master, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    # the ZAP handler lives as long as the context; a fresh log sees this test's refusals
    security.zap_handler(zmq.Context.instance()).refusals = security.RefusalLog(security.logger)
    m = run_master({"chat": [server("chat-1", "chat"), server("chat-2", "chat")]}, curve=True)
    assert m.ready.wait(20) and m.start_error is None       # the fake servers use CURVE
    keys = security.load_keys(tmp_path)
    assert keys.curve
    before = cluster_view(m)
    public, secret = zmq.curve_keypair()
    stranger = dataclasses.replace(keys, client_public=public, client_secret=secret)
    # even with the right cluster secret, no CURVE or a foreign CURVE key gets no answer at all
    for intruder in (Intruder(m.endpoint, secret=keys.secret),
                     Intruder(m.endpoint, secret=keys.secret, curve_keys=stranger)):
        try:
            for msg in UNINVITED:
                intruder.send(*msg)
            assert intruder.recv(timeout=1.0) is None
        finally:
            intruder.close()
    assert cluster_view(m) == before
    wait_until(lambda: refusal_lines(caplog, "a CURVE connection")
             and refusal_lines(caplog, "a connection without the cluster's CURVE key"),
             message="both refusals logged")
    assert len(refusal_lines(caplog, "a CURVE connection")) == 1
    assert "127.0.0.1" in refusal_lines(caplog, "a CURVE connection")[0].getMessage()
    # usually PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH; EPIPE when the peer hung up first
    assert "ZeroMQ handshake failed" in refusal_lines(
        caplog, "a connection without the cluster's CURVE key")[0].getMessage()


def test_failed_admin_logins_are_throttled_per_peer(run_master, tmp_path, caplog):
    m = run_master({"chat": [server("chat-1", "chat")]})
    assert m.ready.wait(20)
    m.control.throttle = LoginThrottle(free=3, base=2.0, max_delay=60)
    admin = Intruder(m.endpoint, secret=security.load_keys(tmp_path).secret)

    def login(password):
        admin.send("admin", "admin", password, "status", {})
        return admin.sealer.open(admin.recv())

    try:
        answers = [login("guess-%d" % n) for n in range(200)]
        failed = [a for a in answers if "authentication failed" in a[1]]
        locked = [a for a in answers if "too many failed admin logins from 127.0.0.1" in a[1]]
        assert len(failed) == 4 and len(locked) == 196   # 3 free tries, the 4th locks
        answer = login("s3cret")            # the right password waits out the lockout too
        assert answer[0] == "error" and "try again in" in answer[1]
        started = time.monotonic()
        wait_until(lambda: login("s3cret")[0] == "ok", timeout=10, message="lockout to end")
        assert time.monotonic() - started > 1.0
        # a success clears the address; later failures start from the free tries again
        assert "authentication failed" in login("wrong")[1]
    finally:
        admin.close()
    assert len([r for r in caplog.records if "locked out for" in r.getMessage()]) == 1


def test_unregistered_server_that_registers_again_keeps_auto_restart(run_master, tmp_path):
    m = run_master({"chat": [server("chat-1", "chat", **{"auto-restart": True}),
                             server("chat-2", "chat")]})
    assert m.ready.wait(20)
    proc = m.supervisor.procs["chat-1"]
    member = Intruder(m.endpoint, secret=security.load_keys(tmp_path).secret)
    try:
        member.send("unregister", "chat-1")     # authentic (a cluster member may say it)
        wait_until(lambda: proc.explicit_stop, message="the unregister")
    finally:
        member.close()
    # chat-1 still runs: its next heartbeat is answered "reregister" and it comes back
    wait_until(lambda: "chat-1" in m.registry and not proc.explicit_stop, message="re-registration")
    old_pid = proc.pid
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: proc.restarts == 1 and "chat-1" in m.registry
             and m.registry.get("chat-1").record["pid"] != old_pid, message="auto-restart")


def test_a_pid_claimed_in_a_register_is_never_signalled(run_master, tmp_path, bystander):
    m = run_master({"chat": [server("chat-1", "chat")]})
    assert m.ready.wait(20)
    member = Intruder(m.endpoint, secret=security.load_keys(tmp_path).secret)
    try:
        member.send("register", {"id": "hand-1", "serverType": "chat", "host": "127.0.0.1",
                                 "port": 1, "pid": bystander.pid})
        assert member.sealer.open(member.recv())[0] == "welcome"
    finally:
        member.close()
    # even an authentic register cannot point stop/kill at a process that is not that server
    m.control.stop_servers(list(m.supervisor.procs), graceful=False, timeout=2.0)
    assert bystander.poll() is None and procinfo.is_alive(bystander.pid)


def test_production_across_hosts_needs_curve(tmp_path, fake_servers):
    from zpomelo.errors import ZpomeloError
    from zpomelo.master.master import Master

    from .conftest import write_project
    write_project(tmp_path, {"chat": [server("chat-1", "chat", host="10.1.2.3")]},
                  env="production")
    with pytest.raises(ZpomeloError, match=r"10\.1\.2\.3 is not loopback.*`zpomelo keys`"):
        Master(tmp_path, "production")
    security.check_production("development", security.load_keys(tmp_path), ["10.1.2.3"])
    security.generate(tmp_path, curve=True, force=True)
    Master(tmp_path, "production")          # with CURVE keys it may run across hosts


def test_master_refuses_to_start_without_the_secret(tmp_path, fake_servers):
    from zpomelo.errors import ZpomeloError
    from zpomelo.master.master import Master

    from .conftest import write_project
    write_project(tmp_path, {"chat": [server("chat-1", "chat")]})
    (tmp_path / "config" / "keys" / "cluster.secret").unlink()
    with pytest.raises(ZpomeloError, match="cluster.secret is missing.*`zpomelo keys`"):
        Master(tmp_path, "development")


def test_login_lockout_grows_with_each_failure_and_clears_on_success():
    now = [100.0]
    throttle = LoginThrottle(free=2, base=1.0, max_delay=5.0, clock=lambda: now[0])
    delays = [throttle.failed("10.0.0.9") for _ in range(7)]
    assert delays == [0.0, 0.0, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert throttle.wait_left("10.0.0.9") == 5.0 and throttle.wait_left("10.0.0.8") == 0.0
    now[0] += 5.0
    assert throttle.wait_left("10.0.0.9") == 0.0
    throttle.succeeded("10.0.0.9")
    assert throttle.failed("10.0.0.9") == 0.0
