"""A project directory whose servers are tests/master/fake_server.py processes."""
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from zpomelo.master import procinfo
from zpomelo.rpc import security

FAKE_SERVER = Path(__file__).with_name("fake_server.py")
FAKE_COMMAND = "%s %s" % (sys.executable, FAKE_SERVER)


def write_project(base, servers, master_port=0, heartbeat_timeout=None, env="development",
                  curve=False):
    """config/ for one env: servers = {"type": [server dicts]}; config/keys/ with a cluster
    secret (and CURVE keys when curve), made once per project directory."""
    conf = base / "config"
    conf.mkdir(parents=True, exist_ok=True)
    master = {"id": "master-server-1", "host": "127.0.0.1", "port": master_port}
    if heartbeat_timeout is not None:
        master["heartbeatTimeout"] = heartbeat_timeout
    (conf / "servers.json").write_text(json.dumps({env: servers}))
    (conf / "master.json").write_text(json.dumps({env: master}))
    (conf / "adminUser.json").write_text(json.dumps(
        [{"id": "user-1", "username": "admin", "password": "s3cret", "level": 1}]))
    if not (conf / "keys" / security.SECRET_FILE).exists():
        security.generate(base, curve=curve)
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


@pytest.fixture
def run_master(tmp_path, fake_servers):
    """start(servers, heartbeat_timeout=None, curve=False): a Master in this process (gevent)
    whose servers are fake_server.py processes; everything is stopped at teardown."""
    from zpomelo.master.master import Master
    from .cli_project import kill_project
    masters = []

    def start(servers, heartbeat_timeout=None, curve=False):
        write_project(tmp_path, servers, heartbeat_timeout=heartbeat_timeout, curve=curve)
        m = Master(tmp_path, "development", server_command=FAKE_COMMAND.split())
        m.start()
        masters.append(m)
        return m

    yield start
    for m in masters:
        fake_servers.extend(p.pid for p in m.supervisor.procs.values() if p.pid)
        m.close()
    kill_project(tmp_path)
