"""A real chat cluster (examples/chat copied, every port 0) whose master serves the web console.

adminUser.json holds an operator with a hashed password and a watch-only user, so the tests
log in the way an operator would after `python -m zpomelo.master.admin_users`.
"""
import json
import os

import pytest

from zpomelo.master.admin_users import hash_password
from zpomelo.testing import ProcessCluster
from zpomelo.testing.process_cluster import copy_project

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHAT_DIR = os.path.join(ROOT, "examples", "chat")
OPERATOR = ("ops", "ops-pass-1")
WATCHER = ("watcher", "watch-pass-2")
ENV = "test"


def write_console_project(target):
    copy_project(CHAT_DIR, target, ENV)
    conf = target / "config"
    (conf / "master.json").write_text(json.dumps({ENV: {
        "id": "master-server-1", "host": "127.0.0.1", "port": 0, "adminWebPort": 0}}))
    (conf / "adminUser.json").write_text(json.dumps([
        {"id": "user-1", "username": OPERATOR[0], "password": hash_password(OPERATOR[1]),
         "level": 1},
        {"id": "user-2", "username": WATCHER[0], "password": WATCHER[1], "level": 0}]))
    return target


@pytest.fixture(scope="module")
def console_cluster(tmp_path_factory):
    """(ProcessCluster, console base URL) for the module; stopped after it."""
    project = write_console_project(tmp_path_factory.mktemp("console") / "chat")
    cluster = ProcessCluster(project, ENV, username=OPERATOR[0], password=OPERATOR[1])
    cluster.start()
    try:
        url = cluster.master.get("adminWeb")
        assert url and url.startswith("http://127.0.0.1:"), cluster.master
        yield cluster, url.rstrip("/")
    finally:
        cluster.stop()
