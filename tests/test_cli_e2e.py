"""The whole path a user takes: zpomelo init, start -D, a client through gate -> connector -> game,
zpomelo add, faults (SIGKILL of servers and of the master), zpomelo stop. Real server processes."""
import os
import signal
import time

import pytest

from master.cli_project import (kill_project, list_rows, master_pid, ok, project_pids,
                                use_free_ports, zpomelo)
from zpomelo.client import Client
from zpomelo.master import procinfo
from zpomelo.testing import wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def project(tmp_path):
    base = tmp_path / "mygame"
    assert "created a zpomelo project" in ok(tmp_path, "init", base)
    use_free_ports(base)        # the template's fixed ports (3005, 3010, ...) may be taken here
    yield base
    kill_project(base)


def play(gate_port, uid, timeout=5):
    """Log uid in through the gate and a connector, say hello to its game server.

    Returns (the hello reply, the onHello push the game server sent back through the bus).
    """
    with Client.connect("127.0.0.1", gate_port, timeout=timeout) as gate:
        entry = gate.request("gate.gateHandler.queryEntry", {"uid": uid}, timeout=timeout)
    assert entry["code"] == 200, entry
    with Client.connect(entry["host"], entry["port"], timeout=timeout) as client:
        login = client.request("connector.entryHandler.entry", {"uid": uid}, timeout=timeout)
        assert login["code"] == 200, login
        reply = client.request("game.gameHandler.hello", {"text": "hi"}, timeout=timeout)
        push = client.wait_push("onHello", timeout=timeout)
    return reply, push


def try_play(gate_port, uid):
    try:
        reply, push = play(gate_port, uid, timeout=2)
    except Exception:      # a server is coming or going: the caller polls
        return None
    return reply if reply.get("code") == 200 else None


def servers_of(gate_port, uids):
    """uid -> the game server that answered it."""
    return {uid: play(gate_port, uid)[0]["server"] for uid in uids}


UIDS = ["user-%d" % i for i in range(8)]


def test_init_start_play_add_faults_and_stop(project):
    out = ok(project, "start", "-D")
    assert "cluster started: 3 servers" in out
    rows = list_rows(project)
    assert {r["state"] for r in rows.values()} == {"running"}
    assert set(rows) == {"master-server-1", "gate-server-1", "connector-server-1",
                         "game-server-1"}
    assert all(procinfo.is_alive(r["pid"]) for r in rows.values())
    # what each server loaded at start is frozen out of the garbage collector's walks
    assert all(r["gcFrozen"] > 1000 for sid, r in rows.items() if sid != "master-server-1"), rows
    gate_port = rows["gate-server-1"]["clientPort"]

    reply, push = play(gate_port, "alice")
    assert reply == {"code": 200, "reply": "hello alice: hi", "server": "game-server-1"}
    assert push == {"from": "alice", "text": "hi", "server": "game-server-1"}
    assert rows["connector-server-1"]["connections"] == 0

    # hot add: the new game server takes its share of the users (requests and pushes)
    added = ok(project, "add", "id=game-server-2", "host=127.0.0.1", "port=0", "serverType=game")
    assert "added game-server-2 (game)" in added
    routed = wait_until(lambda: (lambda m: m if "game-server-2" in m.values() else None)(
        servers_of(gate_port, UIDS)), timeout=15.0, message="requests routed to game-server-2")
    assert set(routed.values()) == {"game-server-1", "game-server-2"}
    moved = [uid for uid, sid in routed.items() if sid == "game-server-1"]

    # SIGKILL without auto-restart: stays down, and its users go to the other game server
    rows = list_rows(project)
    os.kill(rows["game-server-1"]["pid"], signal.SIGKILL)
    wait_until(lambda: list_rows(project)["game-server-1"]["state"] == "down", timeout=15.0, message="down")
    assert list_rows(project)["game-server-1"]["restarts"] == 0
    wait_until(lambda: all((try_play(gate_port, uid) or {}).get("server") == "game-server-2"
                           for uid in moved), timeout=15.0, message="routing without game-server-1")

    # SIGKILL the master: the servers keep serving; a new master adopts them
    os.kill(master_pid(project), signal.SIGKILL)
    wait_until(lambda: not procinfo.is_alive(rows["master-server-1"]["pid"]), timeout=15.0, message="master gone")
    assert play(gate_port, "bob")[0]["code"] == 200
    ok(project, "start", "-D")
    adopted = list_rows(project)
    for sid in ("gate-server-1", "connector-server-1", "game-server-2"):
        assert adopted[sid]["pid"] == rows[sid]["pid"], sid
        assert adopted[sid]["state"] == "running"
    assert adopted["game-server-1"]["state"] == "running"     # configured: started again
    assert adopted["game-server-1"]["pid"] != rows["game-server-1"]["pid"]
    assert play(gate_port, "carol")[0]["code"] == 200

    # graceful stop of everything: no process is left
    pids = [r["pid"] for r in adopted.values()]
    out = ok(project, "stop")
    assert "and the master" in out
    assert not [pid for pid in pids if procinfo.is_alive(pid)]
    assert project_pids(project) == []


def test_production_start_and_auto_restart(project):
    out = ok(project, "start", "-e", "production", "-D")
    assert "cluster started: 5 servers" in out
    rows = list_rows(project)      # no -e: the one running cluster of the project
    assert {sid for sid, r in rows.items() if r["state"] == "running"} == {
        "master-server-1", "gate-server-1", "connector-server-1", "connector-server-2",
        "game-server-1", "game-server-2"}
    gate_port = rows["gate-server-1"]["clientPort"]
    routed = servers_of(gate_port, UIDS)
    uid = next(u for u, sid in routed.items() if sid == "game-server-1")

    killed_at = time.monotonic()
    os.kill(rows["game-server-1"]["pid"], signal.SIGKILL)
    back = wait_until(lambda: (lambda r: r if r["state"] == "running" and r["restarts"] == 1
                             else None)(list_rows(project)["game-server-1"]),
                      timeout=20, message="game-server-1 restarted")
    assert back["pid"] != rows["game-server-1"]["pid"]
    wait_until(lambda: (try_play(gate_port, uid) or {}).get("server") == "game-server-1",
               timeout=15.0, message="game-server-1 serving again")
    recovery = time.monotonic() - killed_at
    assert recovery < 10, "back and serving after %.1f s" % recovery

    ok(project, "stop")
    assert project_pids(project) == []
