"""Crons per server type (config/crons.json): real Applications in one process on loopback.

Each cron counts its runs in the running server's settings (``app.get("ticks")``), so the test
sees, per server, how often each cron fired; it waits with deadlines, never a guessed sleep.
"""
import json
import logging
import sys
import time

import pytest

from zpomelo import crons
from zpomelo.errors import ConfigError
from zpomelo.testing import InProcessCluster, wait_until

pytestmark = pytest.mark.timeout(60)

CRON_CODE = '''
def tick(app):
    ticks = app.settings.setdefault("ticks", {})
    ticks["tick"] = ticks.get("tick", 0) + 1


def boom(app):
    ticks = app.settings.setdefault("ticks", {})
    ticks["boom"] = ticks.get("boom", 0) + 1
    raise RuntimeError("boom on purpose")


def slow(app):
    import gevent
    ticks = app.settings.setdefault("ticks", {})
    ticks["slow"] = ticks.get("slow", 0) + 1
    gevent.sleep(3.5)
'''

SERVERS = {"test": {
    "chat": [{"id": "chat-1", "host": "127.0.0.1", "port": 0},
             {"id": "chat-2", "host": "127.0.0.1", "port": 0}],
    "area": [{"id": "area-1", "host": "127.0.0.1", "port": 0}],
}}


def make_project(tmp_path, chat_crons, per_env=False, code=CRON_CODE):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "servers.json").write_text(json.dumps(SERVERS))
    if per_env:
        (tmp_path / "config" / "test").mkdir()
        (tmp_path / "config" / "test" / "crons.json").write_text(json.dumps({"chat": chat_crons}))
    else:
        (tmp_path / "config" / "crons.json").write_text(
            json.dumps({"test": {"chat": chat_crons}, "production": {"area": chat_crons}}))
    for server_type in ("chat", "area"):
        (tmp_path / "app" / "servers" / server_type / "handler").mkdir(parents=True)
    cron_dir = tmp_path / "app" / "servers" / "chat" / "cron"
    cron_dir.mkdir()
    (cron_dir / "chatCron.py").write_text(code)
    return str(tmp_path)


def ticks(app, name):
    return app.get("ticks", {}).get(name, 0)


# -- next-run computation (croniter, 6 fields, seconds first) -----------------------------

def test_next_run_every_second_is_the_next_whole_second():
    assert crons.next_run("* * * * * *", 1000000.5) == 1000001.0
    assert crons.next_run("* * * * * *", 1000001.0) == 1000002.0    # strictly after


def test_next_run_seconds_come_first():
    base = time.mktime((2026, 1, 1, 10, 0, 0, 0, 0, -1))   # local time, as crons run
    assert crons.next_run("0 30 * * * *", base) == base + 30 * 60
    assert crons.next_run("*/15 * * * * *", base) == base + 15
    assert crons.next_run("0 0 12 * * *", base) == base + 2 * 3600


# -- a running cluster -----------------------------------------------------------------

def test_cron_fires_on_every_server_of_its_type_and_nowhere_else(tmp_path):
    base = make_project(tmp_path, [{"id": 1, "time": "* * * * * *", "action": "chatCron.tick"}])
    with InProcessCluster(base, "test") as cluster:
        wait_until(lambda: ticks(cluster["chat-1"], "tick") >= 2
                   and ticks(cluster["chat-2"], "tick") >= 2, 10, message="chat crons to fire twice")
        assert cluster["area-1"].get("ticks") is None


def test_per_env_file_and_server_id_runs_on_one_server_only(tmp_path):
    base = make_project(tmp_path, [
        {"id": 1, "time": "* * * * * *", "action": "chatCron.tick", "serverId": "chat-2"}],
        per_env=True)
    with InProcessCluster(base, "test") as cluster:
        wait_until(lambda: ticks(cluster["chat-2"], "tick") >= 2, 10, message="chat-2's cron")
        assert ticks(cluster["chat-1"], "tick") == 0


def test_a_cron_that_raises_is_logged_and_keeps_firing(tmp_path, caplog):
    base = make_project(tmp_path, [{"id": 7, "time": "* * * * * *", "action": "chatCron.boom"}])
    with caplog.at_level(logging.ERROR, logger="zpomelo.crons"):
        with InProcessCluster(base, "test", only=["chat-1"]) as cluster:
            wait_until(lambda: ticks(cluster["chat-1"], "boom") >= 3, 10, message="3 failing runs")
    failures = [r for r in caplog.records if "cron 7 (chatCron.boom) failed" in r.getMessage()]
    assert len(failures) >= 2 and failures[0].exc_info[0] is RuntimeError


def test_a_cron_still_running_is_skipped_not_piled_up(tmp_path, caplog):
    base = make_project(tmp_path, [{"id": "s", "time": "* * * * * *", "action": "chatCron.slow"}])
    with caplog.at_level(logging.WARNING, logger="zpomelo.crons"):
        with InProcessCluster(base, "test", only=["chat-1"]) as cluster:
            wait_until(lambda: any("skipped" in r.getMessage() for r in caplog.records), 10,
                       message="a skipped run")
            assert ticks(cluster["chat-1"], "slow") == 1


def test_add_and_remove_crons_at_run_time(tmp_path):
    base = make_project(tmp_path, [])
    with InProcessCluster(base, "test", only=["chat-1", "area-1"]) as cluster:
        app = cluster["chat-1"]
        assert app.add_crons([{"id": 5, "time": "* * * * * *", "action": "chatCron.tick"}]) == [5]
        wait_until(lambda: ticks(app, "tick") >= 2, 10, message="the added cron")
        with pytest.raises(ConfigError, match="cron id 5, field 'id': duplicate id"):
            app.add_crons([{"id": 5, "time": "* * * * * *", "action": "chatCron.tick"}])
        assert app.remove_crons([5, 99]) == [5]
        stopped_at = ticks(app, "tick")
        # a run already started may still count once; after that nothing: wait 2 due times
        app.add_crons([{"id": 6, "time": "* * * * * *", "action": "chatCron.boom"}])
        wait_until(lambda: ticks(app, "boom") >= 2, 10, message="the second added cron")
        assert ticks(app, "tick") <= stopped_at + 1
        with pytest.raises(ConfigError, match="no file app/servers/area/cron/chatCron.py"):
            cluster["area-1"].add_crons([{"id": 1, "time": "* * * * * *",
                                          "action": "chatCron.tick"}])


# -- bad configuration -------------------------------------------------------------------

@pytest.mark.parametrize("entry, expected", [
    ({"id": 1, "time": "* * * * * *", "action": "nope.tick"},
     r"cron id 1, field 'action': no file app/servers/chat/cron/nope.py \(files there: chatCron\)"),
    ({"id": 1, "time": "* * * * * *", "action": "chatCron.missing"},
     r"cron id 1, field 'action': no public function missing in app/servers/chat/cron/chatCron.py"),
    ({"id": 1, "time": "* * * * * *", "action": "tick"}, r"field 'action': 'tick' is not"),
    ({"id": 2, "time": "0 30 * * *", "action": "chatCron.tick"},
     r"cron id 2, field 'time': '0 30 \* \* \*' is not a 6-field cron expression"),
    ({"id": 2, "time": "61 * * * * *", "action": "chatCron.tick"}, r"cron id 2, field 'time'"),
    ({"time": "* * * * * *", "action": "chatCron.tick"}, r"field 'id': cron #0 needs an id"),
    ({"id": 1, "time": "* * * * * *", "action": "chatCron.tick", "serverId": 3},
     r"cron id 1, field 'serverId'"),
])
def test_bad_entries_are_config_errors_naming_file_type_id_and_fix(tmp_path, entry, expected):
    base = make_project(tmp_path, [entry])
    with pytest.raises(ConfigError, match=expected) as info:
        InProcessCluster(base, "test", only=["chat-1"]).start()
    assert "crons.json: server type 'chat'" in str(info.value)


def test_duplicate_ids_in_the_file(tmp_path):
    entry = {"id": 1, "time": "* * * * * *", "action": "chatCron.tick"}
    base = make_project(tmp_path, [entry, entry])
    with pytest.raises(ConfigError, match="server type 'chat', cron id 1, field 'id': duplicate"):
        InProcessCluster(base, "test", only=["chat-1"]).start()


def test_other_server_types_do_not_need_the_cron_code(tmp_path):
    base = make_project(tmp_path, [{"id": 1, "time": "* * * * * *", "action": "nope.tick"}])
    with InProcessCluster(base, "test", only=["area-1"]) as cluster:
        assert cluster["area-1"].crons.crons == {}


def test_without_croniter_the_error_says_what_to_install(tmp_path, monkeypatch):
    base = make_project(tmp_path, [{"id": 1, "time": "* * * * * *", "action": "chatCron.tick"}])
    monkeypatch.setitem(sys.modules, "croniter", None)     # what `import croniter` sees when absent
    with pytest.raises(ConfigError, match=r"pip install zpomelo\[cron\]"):
        InProcessCluster(base, "test", only=["chat-1"]).start()
