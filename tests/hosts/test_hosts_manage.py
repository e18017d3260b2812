"""Servers on other hosts managed through their control channel: a server started by hand,
a frozen server killed over ssh, restart, and a restarted master adopting remote servers."""
import json
import os
import signal
import subprocess
import sys

import pytest

from hosts.conftest import ENV, HOST_B, HOST_C, write_hosts_project
from hosts.test_hosts_cluster import parent_cmdline, processes_mentioning
from master.cli_project import kill_project, list_rows, ok, zpomelo
from zpomelo.master import procinfo
from zpomelo.testing import wait_until

pytestmark = pytest.mark.timeout(150)

PW = ("-p", "s3cret")
HEARTBEAT_TIMEOUT = 2.5      # heartbeats come every second; a loaded machine may skip one


def rows_of(base):
    return list_rows(base, "-e", ENV, *PW)


def master_log(base):
    return (base / "logs" / "master.log").read_text()


@pytest.fixture
def small_project(tmp_path, sshd):
    servers = {
        "gate": [{"id": "gate-server-1", "host": "127.0.0.1", "port": 0, "frontend": True,
                  "clientPort": 0}],
        "connector": [{"id": "connector-server-1", "host": HOST_B, "port": 0, "frontend": True,
                       "clientPort": 0}],
        "chat": [{"id": "chat-server-1", "host": HOST_C, "port": 0, "auto-restart": True}],
    }
    base = write_hosts_project(tmp_path / "chat", sshd, servers,
                               heartbeat_timeout=HEARTBEAT_TIMEOUT)
    yield base
    kill_project(base)
    for pid in processes_mentioning(base):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_server_started_by_hand_joins_stays_and_is_stopped_by_the_master(small_project, sshd):
    base = small_project
    ok(base, "start", "-D", "-e", ENV)
    port = rows_of(base)["master-server-1"]["port"]
    record = {"id": "chat-hand-1", "serverType": "chat", "host": HOST_B, "port": 0}
    remote = ("cd %s && exec %s -m zpomelo.server --dir %s --env %s --id chat-hand-1 "
              "--master tcp://127.0.0.1:%d --log-dir %s/logs --record '%s'"
              % (base, sys.executable, base, ENV, port, base, json.dumps(record)))
    by_hand = subprocess.Popen(sshd.ssh_argv(HOST_B) + [remote], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        row = wait_until(lambda: rows_of(base).get("chat-hand-1"), message="chat-hand-1 listed")
        assert row["state"] == "running" and row["host"] == HOST_B and row["rss"] > 0
        assert "--id chat-hand-1 " in " ".join(procinfo.cmdline(row["pid"])) + " "
        # several heartbeat timeouts go by: it is never dropped and re-added
        wait_until(lambda: (rows_of(base)["chat-hand-1"]["uptime"] or 0) > 3 * HEARTBEAT_TIMEOUT,
                   timeout=30, message="three heartbeat timeouts of uptime")
        log = master_log(base)
        assert log.count("server chat-hand-1 (chat) registered") == 1, log
        assert "chat-hand-1 left the cluster" not in log
        out = ok(base, "stop", "-e", ENV, *PW, "chat-hand-1")
        assert "stopped chat-hand-1" in out
        assert by_hand.wait(10) == 0            # the process we started by hand ended cleanly
        assert not procinfo.is_alive(row["pid"])
        assert rows_of(base)["chat-hand-1"]["state"] == "stopped"
    finally:
        if by_hand.poll() is None:
            by_hand.kill()
            by_hand.wait()
    ok(base, "stop", "-e", ENV, *PW)


def test_a_frozen_remote_server_is_killed_over_ssh_and_restart_works_across_hosts(
        small_project):
    base = small_project
    ok(base, "start", "-D", "-e", ENV)
    rows = rows_of(base)
    chat_pid = rows["chat-server-1"]["pid"]
    os.kill(chat_pid, signal.SIGSTOP)       # it cannot answer the "kill" command
    try:
        out = ok(base, "kill", "-e", ENV, *PW, "chat-server-1")
    finally:
        if procinfo.is_alive(chat_pid):
            os.kill(chat_pid, signal.SIGCONT)
    assert "killed chat-server-1" in out
    assert not procinfo.is_alive(chat_pid)
    assert "chat-server-1: " in master_log(base) and "; killing it on its host" in master_log(base)
    assert rows_of(base)["chat-server-1"]["state"] == "stopped"   # killed on request: no restart

    old = rows["connector-server-1"]["pid"]
    out = ok(base, "restart", "-e", ENV, *PW, "-i", "connector-server-1")
    assert "restarted connector-server-1" in out
    row = rows_of(base)["connector-server-1"]
    assert row["state"] == "running" and row["pid"] != old and not procinfo.is_alive(old)
    assert "sshd" in parent_cmdline(row["pid"])[1] and row["restarts"] == 1
    ok(base, "stop", "-e", ENV, *PW)


def test_a_restarted_master_adopts_remote_servers_and_restarts_a_dead_one(small_project):
    base = small_project
    ok(base, "start", "-D", "-e", ENV)
    rows = rows_of(base)
    os.kill(rows["master-server-1"]["pid"], signal.SIGKILL)
    wait_until(lambda: not procinfo.is_alive(rows["master-server-1"]["pid"]), message="master gone")
    ok(base, "start", "-D", "-e", ENV)          # adopts the servers that still run
    again = rows_of(base)
    for sid in ("connector-server-1", "chat-server-1"):
        assert again[sid]["pid"] == rows[sid]["pid"] and again[sid]["state"] == "running"
        assert again[sid]["remote"] and again[sid]["rss"] > 0
    # an adopted remote server has no child to watch: its silence is its death
    os.kill(rows["chat-server-1"]["pid"], signal.SIGKILL)
    row = wait_until(lambda: (lambda r: r if r["state"] == "running" and r["restarts"] == 1
                            else None)(rows_of(base)["chat-server-1"]), timeout=20,
                   message="chat-server-1 restarted over ssh")
    assert row["pid"] != rows["chat-server-1"]["pid"] and "sshd" in parent_cmdline(row["pid"])[1]
    # without auto-restart, silence only makes it unresponsive; stop then finds nothing to stop
    os.kill(rows["connector-server-1"]["pid"], signal.SIGKILL)
    wait_until(lambda: rows_of(base)["connector-server-1"]["state"] == "unresponsive",
               timeout=20, message="connector-server-1 unresponsive")
    pids = [r["pid"] for r in rows_of(base).values() if r["pid"]]
    out = ok(base, "stop", "-e", ENV, *PW)
    assert "connector-server-1" in out and "gone: nothing to stop on %s" % HOST_B in \
        master_log(base)
    wait_until(lambda: not any(procinfo.is_alive(pid) for pid in pids), message="every pid gone")
    wait_until(lambda: processes_mentioning(base) == [], message="nothing of the project left")


def test_a_host_ssh_cannot_log_in_to_fails_the_start_with_ssh_s_words(tmp_path, sshd):
    stranger = tmp_path / "stranger_key"         # a key the sshd does not authorize
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True)
    servers = {"gate": [{"id": "gate-server-1", "host": "127.0.0.1", "port": 0,
                         "frontend": True, "clientPort": 0}],
               "chat": [{"id": "chat-server-1", "host": HOST_C, "port": 0,
                         "ssh": {"identity": str(stranger)}}]}
    base = write_hosts_project(tmp_path / "chat", sshd, servers)
    try:
        result = zpomelo(base, "start", "-D", "-e", ENV)
        assert result.returncode == 1
        assert "chat-server-1 ssh session ended (exit 255" in result.stderr, result.stderr
        assert "Permission denied" in result.stderr             # ssh's own words, from its log
        wait_until(lambda: processes_mentioning(base) == [], message="nothing left running")
    finally:
        kill_project(base)


def ssh_client_of(base, server_id):
    """The pid of the local ssh client that runs server_id of the project in base (other
    projects on this machine may run servers of the same id)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            args = procinfo.cmdline(int(entry))
            line = " ".join(args) + " "
            if args and args[0] == "ssh" and "--id %s " % server_id in line \
                    and "--dir %s " % base in line:
                return int(entry)
    return None


def test_a_lost_ssh_session_does_not_count_as_the_server_s_death(small_project):
    base = small_project
    ok(base, "start", "-D", "-e", ENV)
    rows = rows_of(base)
    ssh_pid = ssh_client_of(base, "chat-server-1")
    assert ssh_pid is not None
    os.kill(ssh_pid, signal.SIGKILL)            # the session is gone, the server is not
    wait_until(lambda: "chat-server-1: its ssh session ended" in master_log(base),
               message="the master noticed the ssh session's end")
    assert "still answers; watching it by its heartbeats" in master_log(base)
    row = rows_of(base)["chat-server-1"]
    assert row["state"] == "running" and row["pid"] == rows["chat-server-1"]["pid"]
    assert row["restarts"] == 0 and procinfo.is_alive(row["pid"])     # auto-restart: not used
    out = ok(base, "stop", "-e", ENV, *PW)           # and it is still managed: stopped too
    assert "chat-server-1" in out
    wait_until(lambda: not procinfo.is_alive(row["pid"]), message="chat-server-1 gone")
    wait_until(lambda: processes_mentioning(base) == [], message="nothing of the project left")
