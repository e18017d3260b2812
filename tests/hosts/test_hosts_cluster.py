"""A chat cluster over three "hosts" (127.0.0.1, .2, .3) driven by the real `zpomelo` command line:
servers off the master's host are started over a real sshd, and everything the master knows of
them (pid, RSS, CPU, liveness) comes from their control channel."""
import os
import socket

import pytest

from hosts.conftest import ENV, HOST_B, HOST_C
from master.cli_project import list_rows, ok, project_pids, zpomelo
from zpomelo.client import Client
from zpomelo.master import procinfo
from zpomelo.testing import wait_until

pytestmark = pytest.mark.timeout(150)

PW = ("-p", "s3cret")


def parent_cmdline(pid):
    with open("/proc/%d/stat" % pid) as f:
        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    return ppid, " ".join(procinfo.cmdline(ppid))


def processes_mentioning(base):
    """Every live process with the project's path anywhere in its command line (ssh clients
    carry it inside their remote command)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and procinfo.is_alive(int(entry)) \
                and str(base) in " ".join(procinfo.cmdline(int(entry))):
            found.append(int(entry))
    return found


def enter_room(gate_port, username, rid):
    """gate -> the connector it names -> enter the room (served by a chat server)."""
    with Client.connect("127.0.0.1", gate_port, timeout=5) as gate:
        entry = gate.request("gate.gateHandler.queryEntry", {"uid": username}, timeout=5)
    assert entry["code"] == 200, entry
    client = Client.connect(entry["host"], entry["port"], timeout=5)
    reply = client.request("connector.entryHandler.enter", {"username": username, "rid": rid},
                           timeout=5)
    return entry, client, reply


def test_chat_over_three_hosts_start_list_add_port_conflict_kill_stop(hosts_project):
    out = ok(hosts_project, "start", "-D", "-e", ENV)
    assert "cluster started: 3 servers" in out
    rows = list_rows(hosts_project, "-e", ENV, *PW)
    assert {r["state"] for r in rows.values()} == {"running"}
    assert (rows["connector-server-1"]["host"], rows["chat-server-1"]["host"]) == (HOST_B, HOST_C)
    master_pid = rows["master-server-1"]["pid"]
    for sid in ("gate-server-1", "connector-server-1", "chat-server-1"):
        row = rows[sid]
        # the pid, RSS and CPU the server measured on its own host (same machine here: check it)
        assert procinfo.is_alive(row["pid"]) and "--id %s " % sid in \
            " ".join(procinfo.cmdline(row["pid"])) + " "
        assert row["rss"] > 10 * 1024 * 1024 and row["cpu"] is not None
        ppid, parent = parent_cmdline(row["pid"])
        if sid == "gate-server-1":      # the master's host: a plain child of the master
            assert ppid == master_pid and row["remote"] is False
        else:                           # another host: run by sshd, not by the master
            assert "sshd" in parent and ppid != master_pid and row["remote"] is True

    # the chat: gate (host A) -> connector on host B -> chat server on host C, and pushes back
    gate_port = rows["gate-server-1"]["clientPort"]
    entry, ann, reply = enter_room(gate_port, "ann", "room-1")
    assert (entry["host"], entry["port"]) == (HOST_B, rows["connector-server-1"]["clientPort"])
    assert reply == {"users": ["ann"]}
    _, bob, reply = enter_room(gate_port, "bob", "room-1")
    try:
        assert sorted(reply["users"]) == ["ann", "bob"]
        assert ann.wait_push("onAdd", timeout=5) == {"user": "bob"}
        assert bob.request("chat.chatHandler.send", {"rid": "room-1", "content": "hi from B",
                                                     "from": "bob", "target": "*"},
                           timeout=5) == {"code": 200}
        assert ann.wait_push("onChat", timeout=5) == {"msg": "hi from B", "from": "bob",
                                                      "target": "*"}
        rows = list_rows(hosts_project, "-e", ENV, *PW)
        assert rows["connector-server-1"]["connections"] == 2
    finally:
        ann.close()
        bob.close()

    # hot add on host C, over ssh
    out = ok(hosts_project, "add", "-e", ENV, *PW, "id=chat-server-2", "host=%s" % HOST_C,
             "port=0", "serverType=chat")
    assert "added chat-server-2 (chat)" in out
    added = list_rows(hosts_project, "-e", ENV, *PW)["chat-server-2"]
    assert added["state"] == "running" and added["host"] == HOST_C and added["remote"]
    assert "sshd" in parent_cmdline(added["pid"])[1] and added["rss"] > 0

    # a port taken on host C by another program: the server there says so, and so does add
    with socket.socket() as squatter:
        squatter.bind((HOST_C, 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = zpomelo(hosts_project, "add", "-e", ENV, *PW, "id=chat-server-3",
                         "host=%s" % HOST_C, "port=%d" % port, "serverType=chat")
    assert result.returncode == 1
    assert "add failed: chat-server-3 exited with code 2" in result.stderr
    assert "%s:%d" % (HOST_C, port) in result.stderr and "in use" in result.stderr
    rows = list_rows(hosts_project, "-e", ENV, *PW)
    assert "chat-server-3" not in rows and rows["chat-server-2"]["state"] == "running"

    # kill through the control channel
    out = ok(hosts_project, "kill", "-e", ENV, *PW, "chat-server-2")
    assert "killed chat-server-2" in out
    assert not procinfo.is_alive(added["pid"])

    pids = [r["pid"] for r in rows.values() if r["pid"]]
    out = ok(hosts_project, "stop", "-e", ENV, *PW)
    assert "and the master" in out
    wait_until(lambda: not any(procinfo.is_alive(pid) for pid in pids), message="every pid gone")
    assert project_pids(hosts_project) == []
    wait_until(lambda: processes_mentioning(hosts_project) == [], message="no ssh session left")
