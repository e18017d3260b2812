"""The master in this process, with fake server processes that use the real MasterAgent."""
import os
import signal
import time

import msgpack
import pytest

from zpomelo.errors import ConfigError, ZpomeloError
from zpomelo.master import procinfo, runstate, wire
from zpomelo.master.master import Master
from zpomelo.rpc.security import load_keys
from zpomelo.testing import wait_until

from .cli_project import project_pids as pids_of_project
from .conftest import FAKE_COMMAND, server, write_project


def members_seen_by(m, sid):
    return m.command(sid, "info")["members"]


def test_start_registers_everyone_and_fires_after_start_all(run_master):
    m = run_master({"connector": [server("connector-1", "connector", frontend=True)],
                    "chat": [server("chat-1", "chat", cpu=0, args="-X utf8"),
                             server("chat-2", "chat")]})
    assert m.ready.wait(20) and m.start_error is None
    ids = ["chat-1", "chat-2", "connector-1"]
    chat_pid = m.supervisor.procs["chat-1"].pid
    assert os.sched_getaffinity(chat_pid) == {0}                      # "cpu": 0
    assert procinfo.cmdline(chat_pid)[1:3] == ["-X", "utf8"]          # "args" go to python
    assert sorted(m.registry.members) == ids
    for sid in ids:
        wait_until(lambda: m.command(sid, "info")["after_start_all"] == 1, message="after_start_all")
        wait_until(lambda: members_seen_by(m, sid) == ids, message="membership of %s" % sid)
    assert m.registry.get("connector-1").record["clientPort"] > 0     # the port it bound


def test_sigkill_with_auto_restart_comes_back(run_master):
    m = run_master({"chat": [server("chat-1", "chat", **{"auto-restart": True}),
                             server("chat-2", "chat")]})
    assert m.ready.wait(20)
    proc = m.supervisor.procs["chat-1"]
    old_pid = proc.pid
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: proc.restarts == 1 and "chat-1" in m.registry
               and m.registry.get("chat-1").record["pid"] != old_pid, message="restart")
    assert proc.pid != old_pid and proc.state == "running"
    wait_until(lambda: members_seen_by(m, "chat-2") == ["chat-1", "chat-2"], message="re-add")
    # a restarted server runs after_start_all again (it is a new process)
    wait_until(lambda: m.command("chat-1", "info")["after_start_all"] == 1, message="after_start_all")


def test_sigkill_without_auto_restart_stays_down_and_leaves(run_master):
    m = run_master({"chat": [server("chat-1", "chat"), server("chat-2", "chat")]})
    assert m.ready.wait(20)
    wait_until(lambda: members_seen_by(m, "chat-2") == ["chat-1", "chat-2"], message="membership")
    proc = m.supervisor.procs["chat-1"]
    os.kill(proc.pid, signal.SIGKILL)
    wait_until(lambda: proc.state == "down", message="down")
    assert "chat-1" not in m.registry
    assert "SIGKILL" in proc.exit_reason
    wait_until(lambda: members_seen_by(m, "chat-2") == ["chat-2"], message="remove event")
    assert proc.restarts == 0 and not proc.alive


def test_server_failing_at_start_fails_the_start_with_its_log(run_master):
    m = run_master({"chat": [server("chat-1", "chat"), server("bad-1", "chat", fake="fail-start")]})
    assert m.ready.wait(20)
    assert "bad-1 exited with code 3 before it was ready" in m.start_error
    assert "failing on purpose" in m.start_error        # the tail of logs/bad-1.log


def test_silent_server_is_removed_then_rejoins_and_restart_force_kills(run_master):
    m = run_master({"chat": [server("chat-1", "chat"), server("chat-2", "chat"),
                             server("chat-3", "chat", **{"restart-force": True})]},
                   heartbeat_timeout=1.0)
    assert m.ready.wait(20)
    pid = m.supervisor.procs["chat-1"].pid
    forced = m.supervisor.procs["chat-3"]
    forced_pid = forced.pid
    os.kill(pid, signal.SIGSTOP)
    os.kill(forced_pid, signal.SIGSTOP)
    try:
        wait_until(lambda: "chat-1" not in m.registry, message="heartbeat timeout")
        assert m.supervisor.procs["chat-1"].state == "unresponsive"
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: "chat-1" in m.registry, message="re-registration")
    assert m.supervisor.procs["chat-1"].pid == pid
    # restart-force: an unresponsive server is killed and started again
    wait_until(lambda: forced.restarts == 1 and "chat-3" in m.registry, message="forced restart")
    assert forced.pid != forced_pid and not procinfo.is_alive(forced_pid)


def test_a_master_stalled_past_the_timeout_reads_the_heartbeats_that_came_meanwhile(run_master):
    """A loaded machine can keep the master off the CPU for longer than heartbeatTimeout while
    its servers go on beating. When it runs again its heartbeat check's timer runs before its
    reader (libev invokes the newest pending watchers first): the check must let the heartbeats
    waiting on its socket be read first, not remove every server of the cluster."""
    m = run_master({"chat": [server("chat-1", "chat"), server("chat-2", "chat")]},
                   heartbeat_timeout=2.0)
    assert m.ready.wait(20)
    removed = []
    remove_member = m.remove_member
    m.remove_member = lambda sid, reason: removed.append((sid, reason)) or remove_member(sid, reason)
    heartbeats = {sid: m.registry.get(sid).last_seen for sid in m.registry.members}
    time.sleep(3.0)         # the whole process stalls (a blocking sleep): the agents beat every 1 s
    wait_until(lambda: all(m.registry.get(sid) and m.registry.get(sid).last_seen > seen
                           for sid, seen in heartbeats.items()), message="the heartbeats read")
    assert removed == [] and sorted(m.registry.members) == ["chat-1", "chat-2"]
    assert all(p.state == "running" for p in m.supervisor.procs.values())
    # a server that does go silent is still removed
    chat1 = m.supervisor.procs["chat-1"]
    os.kill(chat1.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: "chat-1" not in m.registry, timeout=10, message="heartbeat timeout")
        assert [sid for sid, _ in removed] == ["chat-1"]
    finally:
        os.kill(chat1.pid, signal.SIGCONT)


def test_crash_loop_restarts_with_growing_backoff(run_master):
    m = run_master({"chat": [server("chat-1", "chat"),
                             server("bad-1", "chat", fake="fail-start",
                                    **{"auto-restart": True})]})
    proc = m.supervisor.procs["bad-1"]
    events = []         # ("exit" | "spawn", monotonic time) of bad-1
    on_exit = m.supervisor._on_exit
    m.supervisor._on_spawn = lambda p: p.server_id == "bad-1" and events.append(("spawn", time.monotonic()))

    def exited(p, reason):
        if p.server_id == "bad-1":
            events.append(("exit", time.monotonic()))
        on_exit(p, reason)
    m.supervisor._on_exit = exited
    wait_until(lambda: [e for e, _ in events].count("spawn") >= 3, timeout=30, message="three restarts")
    # the wait between an exit and the next spawn is the backoff alone (how long a failing
    # start takes varies with the machine's load): 0.5 s, 1 s, 2 s ...
    waits = [b[1] - a[1] for a, b in zip(events, events[1:]) if a[0] == "exit" and b[0] == "spawn"]
    assert len(waits) >= 2 and waits[0] >= 0.5 and waits[1] >= 1.0 and waits[1] > waits[0] * 1.5, waits
    assert proc.state in ("restarting", "starting")
    m.control.handle("stop", {"ids": ["bad-1"]})                  # an explicit stop ends it
    assert proc.state == "stopped" and not proc.alive
    assert proc._restart_timer is None          # no restart is pending any more


def test_restarted_master_adopts_running_servers(run_master, tmp_path):
    servers = {"connector": [server("connector-1", "connector", frontend=True)],
               "chat": [server("chat-1", "chat", **{"auto-restart": True})]}
    first = run_master(servers)
    assert first.ready.wait(20)
    pids = {sid: p.pid for sid, p in first.supervisor.procs.items()}
    first.close()               # the master dies; its servers keep running
    second = Master(tmp_path, "development", server_command=FAKE_COMMAND.split())
    second.start()
    try:
        assert second.ready.wait(20) and second.start_error is None
        assert {sid: p.pid for sid, p in second.supervisor.procs.items()} == pids
        assert all(procinfo.is_alive(pid) for pid in pids.values())
        # adopted servers are watched: a SIGKILL is noticed and auto-restart applies
        os.kill(pids["chat-1"], signal.SIGKILL)
        proc = second.supervisor.procs["chat-1"]
        wait_until(lambda: proc.restarts == 1 and "chat-1" in second.registry, message="restart")
    finally:
        second.shutdown(graceful=False)
        second.close()
    assert not runstate.state_path(tmp_path, "development").exists()
    assert pids_of_project(tmp_path) == []


def test_graceful_shutdown_leaves_no_process(run_master, tmp_path):
    m = run_master({"connector": [server("connector-1", "connector", frontend=True)],
                    "chat": [server("chat-1", "chat"), server("slow-1", "chat", fake="slow-stop")]})
    assert m.ready.wait(20)
    m.control.stop_servers(list(m.supervisor.procs), graceful=True, timeout=1.0)
    assert pids_of_project(tmp_path) == []
    states = {sid: p.state for sid, p in m.supervisor.procs.items()}
    assert states == {"connector-1": "stopped", "chat-1": "stopped", "slow-1": "stopped"}
    assert len(m.registry) == 0


def test_admin_auth_and_bad_verbs(run_master):
    m = run_master({"chat": [server("chat-1", "chat")]})
    with pytest.raises(ZpomeloError, match="authentication failed for user 'mallory'"):
        m.control.authenticate("mallory", "s3cret")
    with pytest.raises(ZpomeloError, match="authentication failed for user 'admin'"):
        m.control.authenticate("admin", "wrong")
    assert m.control.authenticate("admin", "s3cret")["username"] == "admin"
    with pytest.raises(ZpomeloError, match="unknown admin verb 'explode'"):
        m.control.handle("explode", {})
    with pytest.raises(ZpomeloError, match="no server with id 'chat-9'"):
        m.control.handle("stop", {"ids": ["chat-9"]})


def test_add_validates_before_touching_anything(run_master):
    m = run_master({"chat": [server("chat-1", "chat", port=0)]})
    assert m.ready.wait(20)
    before = set(m.supervisor.procs)
    with pytest.raises(ZpomeloError, match="'chat-1' is already in use"):
        m.control.handle("add", {"servers": [{"id": "chat-1", "host": "127.0.0.1", "port": 0,
                                              "serverType": "chat"}]})
    with pytest.raises(ZpomeloError, match="port %d of server 'x-1' is already used by the "
                                           "master" % m.port):
        m.control.handle("add", {"servers": [{"id": "x-1", "host": "127.0.0.1", "port": m.port,
                                              "serverType": "chat"}]})
    with pytest.raises(ConfigError, match="serverType"):
        m.control.handle("add", {"servers": [{"id": "x-1", "host": "127.0.0.1", "port": 0}]})
    assert set(m.supervisor.procs) == before
    added = m.control.handle("add", {"servers": [{"host": "127.0.0.1", "port": 0,
                                                  "serverType": "chat", "clusterCount": 2}]})
    assert [r["id"] for r in added] == ["chat-2", "chat-3"]
    wait_until(lambda: members_seen_by(m, "chat-1") == ["chat-1", "chat-2", "chat-3"],
               message="added servers in membership")


def test_bad_config_is_a_clear_error(tmp_path, fake_servers):
    write_project(tmp_path, {"chat": [{"id": "chat-1", "host": "127.0.0.1", "port": "x"}]})
    with pytest.raises(ConfigError, match="servers.json.*chat-1.*port"):
        Master(tmp_path, "development")


def test_junk_on_the_master_port_is_answered_and_the_cluster_is_untouched(run_master, tmp_path):
    import zmq.green as zmq  # the master runs in this process: wait cooperatively
    m = run_master({"chat": [server("chat-1", "chat")]})
    assert m.ready.wait(20)
    sealer = wire.Sealer(load_keys(tmp_path).secret, wire.TO_MASTER, wire.FROM_MASTER)
    ctx = zmq.Context()
    raw = ctx.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.setsockopt(zmq.RCVTIMEO, 5000)
    raw.connect(m.endpoint)
    try:
        for junk in (b"\xc1\xc1 not msgpack", b"\x92\x01\x02", b"\x90"):  # garbage, [1, 2], []
            raw.send(junk)      # not sealed: refused with the fixed answer, nothing else
            assert msgpack.unpackb(raw.recv(), raw=False) == ["error",
                                                              wire.UNAUTHENTICATED_MESSAGE]
            raw.send(sealer.seal_body(junk))    # sealed with the secret, but not a message
            answer = sealer.open(raw.recv())
            assert answer[0] == "error" and "malformed" in answer[1]
        raw.send_multipart([b"two", b"frames"])  # not [identity, frame] at the ROUTER: dropped
        raw.send(sealer.seal("admin", "admin", "wrong", "list", {}))
        answer = sealer.open(raw.recv())
        assert answer[0] == "error" and "admin" in answer[1]
    finally:
        raw.close()
        ctx.term()
    assert sorted(m.registry.members) == ["chat-1"]
    assert m.command("chat-1", "info")["members"] == ["chat-1"]
