"""A project directory whose servers are tests/master/fake_server.py processes."""
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from zpomelo.master import procinfo

FAKE_SERVER = Path(__file__).with_name("fake_server.py")
FAKE_COMMAND = "%s %s" % (sys.executable, FAKE_SERVER)


def write_project(base, servers, master_port=0, heartbeat_timeout=None, env="development"):
    """config/ for one env: servers = {"type": [server dicts]}."""
    conf = base / "config"
    conf.mkdir(parents=True, exist_ok=True)
    master = {"id": "master-server-1", "host": "127.0.0.1", "port": master_port}
    if heartbeat_timeout is not None:
        master["heartbeatTimeout"] = heartbeat_timeout
    (conf / "servers.json").write_text(json.dumps({env: servers}))
    (conf / "master.json").write_text(json.dumps({env: master}))
    (conf / "adminUser.json").write_text(json.dumps(
        [{"id": "user-1", "username": "admin", "password": "s3cret", "level": 1}]))
    return base


def server(sid, stype, frontend=False, **extra):
    d = {"id": sid, "host": "127.0.0.1", "port": 0}
    if frontend:
        d.update(frontend=True, clientPort=0)
    d.update(extra)
    return d


@pytest.fixture
def fake_servers(monkeypatch):
    """Servers started by the master run fake_server.py; every pid is killed at teardown."""
    monkeypatch.setenv("ZPOMELO_SERVER_COMMAND", FAKE_COMMAND)
    pids = []
    yield pids
    kill_all(pids)


def kill_all(pids):
    for pid in pids:
        if procinfo.is_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
