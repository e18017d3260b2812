"""Fixtures for master HA: a real ZooKeeper, and the chat example as a project with masterHA."""
import json
import shutil
from pathlib import Path

import pytest

from master.cli_project import kill_project
from zookeeper_server import ZooKeeperServer, available
from zpomelo.rpc import security

CHAT_DIR = Path(__file__).resolve().parents[2] / "examples" / "chat"
ENV = "test"
SESSION_TIMEOUT = 2.0


@pytest.fixture(autouse=True)
def close_leader_watches():
    """A failed test leaves its LeaderWatch's ZooKeeper client reconnecting to a stopped server
    until the run ends (and logging each try): close what the test did not."""
    from ha.harness import LeaderWatch
    yield
    for watch in list(LeaderWatch.opened):
        watch.close()


@pytest.fixture
def zookeeper(tmp_path):
    """A standalone ZooKeeper on a free loopback port, stopped by pid at teardown."""
    why = available()
    if why:
        pytest.skip(why)
    server = ZooKeeperServer(tmp_path / "zookeeper").start()
    yield server
    server.stop()


def write_ha_project(base, zk_hosts, standbys=1, auto_restart=True, heartbeat_timeout=3.0,
                     session_timeout=SESSION_TIMEOUT):
    """The chat example (env "test", every port 0) with masterHA and `standbys` standby masters."""
    shutil.copytree(CHAT_DIR, base, ignore=shutil.ignore_patterns("__pycache__", "logs"))
    conf = base / "config"
    servers = json.loads((conf / "servers.json").read_text())
    for entries in servers[ENV].values():
        for entry in entries:
            entry["auto-restart"] = auto_restart
    (conf / "servers.json").write_text(json.dumps(servers, indent=1))
    master = {"id": "master-server-1", "host": "127.0.0.1", "port": 0,
              "heartbeatTimeout": heartbeat_timeout,
              "masterHA": {"zookeeper": zk_hosts, "path": "/zpomelo/test-chat",
                           "sessionTimeout": session_timeout,
                           "standbys": [{"id": "master-server-%d" % (i + 2), "host": "127.0.0.1",
                                         "port": 0} for i in range(standbys)]}}
    (conf / "master.json").write_text(json.dumps({ENV: master}, indent=1))
    security.generate(base, curve=False)    # the cluster secret every master port needs
    return base


@pytest.fixture
def ha_project(tmp_path, zookeeper):
    base = write_ha_project(tmp_path / "chat", zookeeper.hosts)
    yield base
    kill_project(base)
