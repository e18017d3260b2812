"""Fixtures for clusters over several "hosts": a real sshd on loopback, and a chat project whose
servers sit on 127.0.0.1 (the master's host), 127.0.0.2 and 127.0.0.3 (reached over ssh)."""
import json
import shutil
from pathlib import Path

import pytest

from hosts.sshd import SshServer
from master.cli_project import kill_project
from zpomelo.rpc import security

CHAT_DIR = Path(__file__).resolve().parents[2] / "examples" / "chat"
ENV = "hosts"
HOST_B, HOST_C = "127.0.0.2", "127.0.0.3"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """One real OpenSSH server for the session, on 127.0.0.1-3 (see sshd.py)."""
    with SshServer(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def write_hosts_project(base, sshd, servers, heartbeat_timeout=None):
    """examples/chat copied to base, with an environment ENV laid out over the hosts."""
    shutil.copytree(CHAT_DIR, base, ignore=shutil.ignore_patterns("logs", "__pycache__"))
    conf = base / "config"
    master = {"id": "master-server-1", "host": "127.0.0.1", "port": 0,
              "ssh": sshd.master_ssh_config()}
    if heartbeat_timeout is not None:
        master["heartbeatTimeout"] = heartbeat_timeout
    (conf / ENV).mkdir()
    (conf / ENV / "servers.json").write_text(json.dumps(servers, indent=1))
    (conf / ENV / "master.json").write_text(json.dumps(master, indent=1))
    (conf / ENV / "adminUser.json").write_text(json.dumps(
        [{"id": "user-1", "username": "admin", "password": "s3cret", "level": 1}]))
    security.generate(base, curve=True)     # the cluster secret and CURVE keys, as `init` does
    return base


def three_hosts():
    """gate on the master's host, a connector on B, a chat server on C."""
    return {
        "gate": [{"id": "gate-server-1", "host": "127.0.0.1", "port": 0, "frontend": True,
                  "clientPort": 0}],
        "connector": [{"id": "connector-server-1", "host": HOST_B, "port": 0, "frontend": True,
                       "clientPort": 0}],
        "chat": [{"id": "chat-server-1", "host": HOST_C, "port": 0}],
    }


@pytest.fixture
def hosts_project(tmp_path, sshd):
    base = write_hosts_project(tmp_path / "chat", sshd, three_hosts())
    yield base
    kill_project(base)
