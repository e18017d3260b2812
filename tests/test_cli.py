"""The real `zpomelo` command line on a project whose servers are fake (tests/master/fake_server.py).

Fast checks of the verbs, their options, exit codes and messages; tests/test_cli_e2e.py runs
real servers.
"""
import json
import os
import signal
import subprocess

import pytest

from master.cli_project import (ZPOMELO, kill_project, list_rows, master_pid, ok, project_pids,
                                zpomelo)
from master.conftest import FAKE_COMMAND, server, write_project
from zpomelo.master import procinfo
from zpomelo.testing import wait_until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("ZPOMELO_SERVER_COMMAND", FAKE_COMMAND)
    write_project(tmp_path, {
        "connector": [server("connector-1", "connector", frontend=True)],
        "chat": [server("chat-1", "chat"), server("chat-2", "chat")]})
    yield tmp_path
    kill_project(tmp_path)


def test_start_list_stop_leaves_no_process(project):
    out = ok(project, "start", "-D")
    assert "cluster started: 3 servers" in out
    rows = list_rows(project, "-p", "s3cret")
    assert set(rows) == {"master-server-1", "connector-1", "chat-1", "chat-2"}
    pids = [row["pid"] for row in rows.values()]
    assert all(procinfo.is_alive(pid) for pid in pids)
    assert {row["state"] for row in rows.values()} == {"running"}
    assert rows["connector-1"]["clientPort"] > 0 and rows["chat-1"]["connections"] == 0
    table = ok(project, "list", "-p", "s3cret")
    assert "CPU%" in table.splitlines()[0] and "connector-1" in table
    out = ok(project, "stop", "-p", "s3cret")
    assert "and the master" in out
    assert not any(procinfo.is_alive(pid) for pid in pids)
    assert project_pids(project) == []


def test_bad_input_and_credentials_give_clear_errors_and_leave_the_cluster_alone(project):
    ok(project, "start", "-D")
    before = {k: v["pid"] for k, v in list_rows(project, "-p", "s3cret").items()}
    port = list_rows(project, "-p", "s3cret")["master-server-1"]["port"]
    cases = [
        (("stop", "chat-9"), "no server with id 'chat-9'"),
        (("kill", "chat-9"), "no server with id 'chat-9'"),
        (("restart", "-i", "chat-9"), "no server with id 'chat-9'"),
        (("add", "id=chat-1", "host=127.0.0.1", "port=0", "serverType=chat"),
         "'chat-1' is already in use"),
        (("add", "id=chat-3", "host=127.0.0.1", "port=%d" % port, "serverType=chat"),
         "already used by the master"),
        (("add", "id=chat-3", "host=127.0.0.1", "port"), "expected key=value"),
        (("add", "id=chat-3", "host=127.0.0.1", "port=abc", "serverType=chat"),
         "'port': must be a non-negative integer"),
        (("add", "id=chat-3", "host=127.0.0.1", "port=0"), "'serverType': missing"),
    ]
    for args, message in cases:
        result = zpomelo(project, *args, "-p", "s3cret")
        assert result.returncode == 1, args
        assert message in result.stderr, (args, result.stderr)
        assert result.stderr.startswith("error: ")
    for user, password in (("admin", "admin"), ("mallory", "s3cret")):
        result = zpomelo(project, "stop", "-u", user, "-p", password)
        assert result.returncode == 1
        assert "authentication failed for user %r" % user in result.stderr
    result = zpomelo(project, "start", "-D")
    assert result.returncode == 1 and "already running" in result.stderr
    servers_json = project / "config" / "servers.json"
    servers_json.write_text(servers_json.read_text()[:-5])       # cut the closing braces
    result = zpomelo(project, "start", "-D")
    assert result.returncode == 1
    assert "servers.json" in result.stderr and "not valid JSON at line" in result.stderr
    after = {k: v["pid"] for k, v in list_rows(project, "-p", "s3cret").items()}
    assert after == before


def test_bad_field_in_servers_json_names_server_and_field(project):
    data = json.loads((project / "config" / "servers.json").read_text())
    data["development"]["chat"][1]["port"] = "sixty"
    (project / "config" / "servers.json").write_text(json.dumps(data))
    result = zpomelo(project, "start", "-D")
    assert result.returncode == 1
    assert "server 'chat-2'" in result.stderr and "field 'port'" in result.stderr
    assert project_pids(project) == []


def test_a_server_that_cannot_start_fails_the_start_and_leaves_nothing(project):
    data = json.loads((project / "config" / "servers.json").read_text())
    data["development"]["chat"][1]["fake"] = "fail-start"
    (project / "config" / "servers.json").write_text(json.dumps(data))
    result = zpomelo(project, "start", "-D")
    assert result.returncode == 1
    assert "chat-2 exited with code 3 before it was ready" in result.stderr
    assert "failing on purpose" in result.stderr          # the tail of logs/chat-2.log
    wait_until(lambda: project_pids(project) == [], timeout=15.0, message="every process gone")


def test_start_one_type_then_the_rest_against_the_running_master(project):
    out = ok(project, "start", "-D", "-t", "connector")
    assert "1 servers" in out
    rows = list_rows(project, "-p", "s3cret")
    assert rows["connector-1"]["state"] == "running" and rows["chat-1"]["pid"] is None
    assert "started chat-1, chat-2" in ok(project, "start", "-t", "chat")
    rows = list_rows(project, "-p", "s3cret")
    assert rows["chat-1"]["state"] == rows["chat-2"]["state"] == "running"
    result = zpomelo(project, "start", "-i", "chat-1")
    assert result.returncode == 1 and "already running: chat-1" in result.stderr
    result = zpomelo(project, "start", "-t", "nosuch")
    assert result.returncode == 1 and "no configured server has type 'nosuch'" in result.stderr


def test_restart_kill_and_add_by_id(project):
    ok(project, "start", "-D")
    rows = list_rows(project, "-p", "s3cret")
    out = ok(project, "restart", "-i", "chat-1", "-p", "s3cret")
    assert "restarted chat-1" in out
    again = list_rows(project, "-p", "s3cret")
    assert again["chat-1"]["pid"] != rows["chat-1"]["pid"] and again["chat-1"]["restarts"] == 1
    assert not procinfo.is_alive(rows["chat-1"]["pid"])
    ok(project, "kill", "chat-2", "-p", "s3cret")
    again = list_rows(project, "-p", "s3cret")
    assert again["chat-2"]["state"] == "stopped" and again["chat-2"]["pid"] is None
    assert not procinfo.is_alive(rows["chat-2"]["pid"])
    added = json.loads(ok(project, "add", "id=chat-3", "host=127.0.0.1", "port=0",
                          "serverType=chat", "-p", "s3cret", "--json"))
    assert added[0]["id"] == "chat-3" and procinfo.is_alive(added[0]["pid"])
    assert list_rows(project, "-p", "s3cret")["chat-3"]["state"] == "running"
    out = ok(project, "kill", "-p", "s3cret")
    assert "killed" in out and "and the master" in out
    assert project_pids(project) == []


def test_sigkilled_master_is_replaced_and_adopts(project):
    ok(project, "start", "-D")
    rows = list_rows(project, "-p", "s3cret")
    os.kill(master_pid(project), signal.SIGKILL)
    result = zpomelo(project, "list", "-p", "s3cret")
    assert result.returncode == 1 and "no master is listening" in result.stderr
    ok(project, "start", "-D")
    adopted = list_rows(project, "-p", "s3cret")
    for sid in ("connector-1", "chat-1", "chat-2"):
        assert adopted[sid]["pid"] == rows[sid]["pid"] and adopted[sid]["state"] == "running"
    ok(project, "stop", "-p", "s3cret")
    assert project_pids(project) == []


def test_no_master_and_init_errors(tmp_path):
    write_project(tmp_path, {"chat": [server("chat-1", "chat")]})
    result = zpomelo(tmp_path, "list")
    assert result.returncode == 1 and "no master of" in result.stderr
    result = zpomelo(tmp_path, "init", str(tmp_path))
    assert result.returncode == 1 and "not empty" in result.stderr
    result = zpomelo(tmp_path, "list", "-h", "127.0.0.1", "-P", "1")
    assert result.returncode == 1 and "no master is listening on 127.0.0.1:1" in result.stderr


def test_foreground_start_stops_the_cluster_on_ctrl_c(project):
    master = subprocess.Popen(ZPOMELO + ["start"], cwd=project, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = master.stdout.readline()         # printed once every server is up
        assert "cluster started: 3 servers" in line and "Ctrl-C" in line
        pids = [r["pid"] for r in list_rows(project, "-p", "s3cret").values()]
        assert master.pid in pids
        master.send_signal(signal.SIGINT)
        assert master.wait(timeout=30) == 0
    finally:
        if master.poll() is None:
            master.kill()
            master.wait()
    assert "master exits" in master.stderr.read()
    assert not [pid for pid in pids if procinfo.is_alive(pid)]
    assert project_pids(project) == []
