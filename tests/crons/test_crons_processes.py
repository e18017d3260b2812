"""Crons in real server processes started by `zpomelo start` under the master."""
import json
import os

import pytest

from zpomelo.testing import wait_until
from zpomelo.testing.process_cluster import ProcessCluster

pytestmark = pytest.mark.timeout(120)

CRON_CODE = '''
import os


def tick(app):
    with open(os.path.join(app.base_dir, "ticks-" + app.server_id), "a") as f:
        f.write("tick\\n")
'''


def _lines(path):
    if not os.path.isfile(path):
        return 0
    with open(path) as f:
        return len(f.read().splitlines())


def test_a_one_second_cron_fires_in_every_process_of_its_type_and_nowhere_else(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "servers.json").write_text(json.dumps({"test": {
        "chat": [{"id": "chat-1", "host": "127.0.0.1", "port": 0},
                 {"id": "chat-2", "host": "127.0.0.1", "port": 0}],
        "area": [{"id": "area-1", "host": "127.0.0.1", "port": 0}]}}))
    (config / "master.json").write_text(json.dumps({"test": {"id": "master", "host": "127.0.0.1",
                                                             "port": 0}}))
    (config / "adminUser.json").write_text(json.dumps(
        [{"id": "user-1", "username": "admin", "password": "cron-test", "level": 1}]))
    (config / "crons.json").write_text(json.dumps({"test": {"chat": [
        {"id": 1, "time": "* * * * * *", "action": "chatCron.tick"}]}}))
    for server_type in ("chat", "area"):
        (tmp_path / "app" / "servers" / server_type / "handler").mkdir(parents=True)
    (tmp_path / "app" / "servers" / "chat" / "cron").mkdir()
    (tmp_path / "app" / "servers" / "chat" / "cron" / "chatCron.py").write_text(CRON_CODE)

    with ProcessCluster(tmp_path, "test") as cluster:
        assert set(cluster.servers()) >= {"chat-1", "chat-2", "area-1"}
        wait_until(lambda: all(_lines(str(tmp_path / ("ticks-" + s))) >= 3
                               for s in ("chat-1", "chat-2")), 20, message="3 ticks per chat server")
        assert not (tmp_path / "ticks-area-1").exists()
        assert not (tmp_path / "ticks-master").exists()
