"""The console's pieces without a cluster: which port it takes, adminWebPort and hashed
passwords checked when config is loaded, password checks, session expiry, and a server's report."""
import json

import pytest

from zpomelo import config
from zpomelo.errors import ConfigError
from zpomelo.master import admin_users
from zpomelo.master.console_sessions import IDLE_SECONDS, MAX_SECONDS, SessionTable
from zpomelo.master.console_web import console_port
from zpomelo.metrics.stats import RECENT_SAMPLES, HandlerStats, RpcStats
from zpomelo.reports import tail_lines


def _master(tmp_path, env, **fields):
    conf = tmp_path / "config"
    conf.mkdir(exist_ok=True)
    (conf / "master.json").write_text(json.dumps({env: dict(
        {"id": "m", "host": "127.0.0.1", "port": 0}, **fields)}))
    return config.load_master(tmp_path, env)


def test_the_console_is_on_in_development_on_loopback_and_off_elsewhere_unless_set(tmp_path):
    assert console_port(_master(tmp_path, "development"), "development") == 0
    assert console_port(_master(tmp_path, "production"), "production") is None
    assert console_port(_master(tmp_path, "production", adminWebPort=3008), "production") == 3008
    assert console_port(_master(tmp_path, "development", adminWebPort=False), "development") is None
    assert console_port(_master(tmp_path, "development", adminWebPort=None), "development") is None
    assert console_port(_master(tmp_path, "development", host="10.0.0.1"), "development") is None


@pytest.mark.parametrize("bad", ["abc", 70000, -1, True])
def test_a_bad_admin_web_port_is_a_config_error_naming_the_field(tmp_path, bad):
    with pytest.raises(ConfigError, match="adminWebPort"):
        _master(tmp_path, "production", adminWebPort=bad)


def test_a_malformed_hashed_password_is_refused_at_load(tmp_path):
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "adminUser.json").write_text(json.dumps(
        [{"username": "ops", "password": "pbkdf2_sha256$x$y", "level": 1}]))
    with pytest.raises(ConfigError, match="pbkdf2_sha256"):
        config.load_admin_users(tmp_path, "production")


def test_passwords_plain_and_hashed_and_levels():
    stored = admin_users.hash_password("pw-1", iterations=1000)
    assert admin_users.check_hash_format(stored) is None
    users = [{"username": "ops", "password": stored, "level": 1},
             {"username": "eye", "password": "plain-2", "level": 0}]
    assert admin_users.find_user(users, "ops", "pw-1") is users[0]
    assert admin_users.find_user(users, "ops", "pw-2") is None
    assert admin_users.find_user(users, "eye", "plain-2") is users[1]
    assert admin_users.find_user(users, "eye", None) is None
    assert admin_users.find_user(users, "nobody", "pw-1") is None
    assert admin_users.may_act(users[0]) and not admin_users.may_act(users[1])


def test_sessions_end_when_idle_or_too_old_and_tokens_are_unguessable():
    now = [1000.0]
    table = SessionTable(clock=lambda: now[0])
    s = table.create({"username": "ops"})
    assert len(s.token) >= 43 and s.token != s.csrf
    forged = ("y" if s.token[0] == "x" else "x") + s.token[1:]   # one character off, never the token
    assert table.find(s.token) is s and table.find(forged) is None
    assert s.csrf_ok(s.csrf) and not s.csrf_ok("") and not s.csrf_ok(None)
    now[0] += IDLE_SECONDS - 1
    assert table.find(s.token) is s             # used: the idle clock restarts
    now[0] += IDLE_SECONDS + 1
    assert table.find(s.token) is None and len(table) == 0
    s = table.create({"username": "ops"})
    for _ in range(int(MAX_SECONDS / (IDLE_SECONDS / 2)) + 1):
        now[0] += IDLE_SECONDS / 2
        table.find(s.token)
    assert table.find(s.token) is None          # busy, but older than MAX_SECONDS
    assert "HttpOnly" in SessionTable.cookie(s) and "Max-Age=0" in SessionTable.cookie(None)


def test_console_rows_of_the_request_stats_and_log_tail(tmp_path):
    stats = HandlerStats(lambda route: route == "a.b.c")
    for ms in range(1, 101):
        stats.observe("a.b.c", ms % 10 == 0, ms / 1000.0)
    assert stats.console_rows() == [{"route": "a.b.c", "count": 100, "errors": 10, "min": 1.0,
                                     "avg": 50.5, "max": 100.0, "p99": 100.0}]
    # the p99 follows the recent samples; count, min and max the whole life
    for _ in range(RECENT_SAMPLES):
        stats.observe("a.b.c", False, 0.002)
    row = stats.console_rows()[0]
    assert row["p99"] == 2.0 and row["max"] == 100.0 and row["count"] == 100 + RECENT_SAMPLES
    rpc = RpcStats({"chat-1": "chat"}.get)
    rpc.reply("chat-1", "chatRemote", "add", 0.004, True)
    rpc.reply("chat-1", "chatRemote", "add", 0.006, False)
    rpc.timeout("chat-1", "chatRemote", "add")
    rpc.gone("gone-1", "chatRemote", "add")
    assert rpc.console_rows() == [
        {"target": "chat-1", "targetType": "chat", "method": "chatRemote.add", "count": 3,
         "errors": 2, "min": 4.0, "avg": 5.0, "max": 6.0, "p99": 6.0},
        {"target": "gone-1", "targetType": "unknown", "method": "chatRemote.add", "count": 1,
         "errors": 1, "min": None, "avg": None, "max": None, "p99": None}]
    log = tmp_path / "x.log"
    log.write_text("".join("line %d\n" % i for i in range(50)))
    assert tail_lines(str(log), 3) == ["line 47", "line 48", "line 49"]
    assert tail_lines(str(tmp_path / "missing.log"), 3) == []
