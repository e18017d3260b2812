"""The election, the fenced leader record and the lease (master/ha.py) against a real ZooKeeper,
candidates in this process; and the masterHA section of master.json."""
import json

import gevent
import pytest
from kazoo.client import KazooClient

from zpomelo.config import MasterRecord
from zpomelo.errors import ConfigError
from zpomelo.master import ha_config
from resume.proxy import TcpProxy
from zpomelo.master.ha import Candidate, ClusterStopped, HAUnavailable, kazoo_client
from zpomelo.testing import wait_until

pytestmark = pytest.mark.timeout(90)


def config_for(zookeeper, timeout=2.0):
    return ha_config.HAConfig(zookeeper.hosts, "/zpomelo/election-test", timeout, ())


def candidate(cfg, n):
    return Candidate(cfg, MasterRecord("master-%d" % n, "127.0.0.1", 3000 + n)).start()


def leader_record(cfg):
    client = KazooClient(hosts=cfg.hosts)
    client.start(timeout=10)
    try:
        return ha_config.decode_leader(client.get(cfg.leader_path)[0])
    finally:
        client.stop()
        client.close()


def test_first_leads_the_next_waits_and_takes_over_with_a_newer_epoch(zookeeper):
    cfg = config_for(zookeeper)
    first, second = candidate(cfg, 1), candidate(cfg, 2)
    try:
        assert first.campaign() == 1 and first.may_act()
        waiting = gevent.spawn(second.campaign)
        gevent.sleep(0.3)           # give the standby time to (wrongly) win: it must not
        assert not waiting.ready() and not second.may_act()
        assert [c["id"] for c in first.contenders()] == ["master-1", "master-2"]
        record = leader_record(cfg)
        assert (record["id"], record["epoch"], record["port"], record["state"]) == \
            ("master-1", 1, 3001, "running")
        first._client.stop()        # its session ends (a dead master)
        assert waiting.get(timeout=10) == 2
        assert second.may_act() and not first.may_act() and first.lost.is_set()
        assert leader_record(cfg)["id"] == "master-2"
    finally:
        first.close()
        second.close()


def test_epochs_keep_growing_across_many_leaders_past_nine(zookeeper):
    """Pomelo sorted sequence numbers as strings: 10 came before 9. Twelve leaders in a row,
    with a standby always waiting, each must lead in turn with the next epoch."""
    cfg = config_for(zookeeper)
    current = candidate(cfg, 0)
    assert current.campaign() == 1
    for n in range(1, 12):
        nxt = candidate(cfg, n)
        waiting = gevent.spawn(nxt.campaign)
        gevent.sleep(0.05)
        assert not waiting.ready()
        current.close()
        assert waiting.get(timeout=10) == n + 1
        current = nxt
    assert leader_record(cfg)["epoch"] == 12
    current.close()


def test_a_master_without_its_node_cannot_write_the_record(zookeeper):
    cfg = config_for(zookeeper)
    first = candidate(cfg, 1)
    try:
        assert first.campaign() == 1
        # someone deletes the leader's candidate node (as a session expiry would)
        node = "%s/%s" % (first._lock.path, first._lock.node)
        client = KazooClient(hosts=cfg.hosts)
        client.start(timeout=10)
        client.delete(node)
        client.stop()
        client.close()
        assert not first._write_record(ha_config.STOPPED)      # fenced: the check fails
        assert leader_record(cfg)["state"] == "running"
        first._renew_once()
        assert first.lost.is_set() and not first.may_act()
    finally:
        first.close()


def test_a_newer_epoch_heard_from_a_server_makes_the_leader_step_down(zookeeper):
    cfg = config_for(zookeeper)
    first = candidate(cfg, 1)
    try:
        epoch = first.campaign()
        first.saw_newer_epoch(epoch, "a server")        # same epoch: nothing happens
        assert first.may_act()
        first.saw_newer_epoch(epoch + 1, "a server")
        assert first.lost.is_set() and not first.may_act()
        assert "knows epoch 2" in first.lost_reason
    finally:
        first.close()


def test_leader_stops_acting_while_zookeeper_is_away_and_resumes_after(zookeeper):
    cfg = config_for(zookeeper)
    first = candidate(cfg, 1)
    try:
        epoch = first.campaign()
        zookeeper.stop()
        wait_until(lambda: not first.may_act(), 5, message="the leader to stop acting")
        zookeeper.start()
        wait_until(first.may_act, 15, message="the leader to act again")
        assert first.epoch == epoch and not first.lost.is_set()
    finally:
        first.close()


def test_an_attempt_at_a_zookeeper_that_does_not_answer_leaves_time_for_the_next(zookeeper):
    """A ZooKeeper that accepts a connection and does not answer yet (one restarting on a loaded
    machine) costs one connection attempt at most a third of the session. kazoo's own bound with
    one server is the whole session: in a full run the leader's attempt hung 6 s while the
    restarted ZooKeeper counted down the 6 s session it had restored; it expired before the next
    attempt, the leader stepped down and the standby took over."""
    proxy = TcpProxy("127.0.0.1", zookeeper.port)
    cfg = ha_config.HAConfig("127.0.0.1:%d" % proxy.port, "/zpomelo/attempt-test", 3.0, ())
    client = kazoo_client(cfg)
    try:
        client.start(timeout=10)
        session = client.client_id
        client.get("/")                 # ZooKeeper heard from this session just now
        proxy.holding = True            # new connections are accepted and never answered ...
        proxy.cut()                     # ... and the link drops: the next attempt hangs
        wait_until(lambda: proxy.held and proxy.held[0]["closed"], 10,
                   message="the hanging attempt to give up")
        held = proxy.held[0]
        # a third of the 3 s session, and room for a loaded machine (kazoo alone: 3 s)
        assert held["closed"] - held["accepted"] <= 1.5, held
        proxy.holding = False
        wait_until(lambda: client.connected, 10, message="the reconnect")
        assert client.client_id == session          # the same session: it did not expire
    finally:
        client.stop()
        client.close()
        proxy.close()


def test_a_standby_exits_when_the_cluster_is_stopped(zookeeper):
    cfg = config_for(zookeeper)
    first, second = candidate(cfg, 1), candidate(cfg, 2)
    second.set_standby(True)
    try:
        first.campaign()
        waiting = gevent.spawn(second.campaign)
        gevent.sleep(0.2)
        assert first.record_stopped()
        with pytest.raises(ClusterStopped):
            waiting.get(timeout=10)
    finally:
        first.close()
        second.close()


def test_a_standby_with_no_cluster_to_take_over_says_so(zookeeper):
    lone = candidate(config_for(zookeeper), 2)
    lone.set_standby(True)
    try:
        with pytest.raises(ClusterStopped, match="none was ever started"):
            lone.campaign()
    finally:
        lone.close()


def test_unreachable_zookeeper_is_a_clear_error():
    cfg = ha_config.HAConfig("127.0.0.1:1", "/x", 2.0, ())
    c = Candidate(cfg, MasterRecord("m", "127.0.0.1", 1))
    with pytest.raises(HAUnavailable, match="cannot reach ZooKeeper at 127.0.0.1:1"):
        c.start(timeout=1.0)


# ---------------------------------------------------------------------- master.json

def write_master(tmp_path, section):
    conf = tmp_path / "config"
    conf.mkdir(parents=True, exist_ok=True)
    master = {"id": "master-server-1", "host": "127.0.0.1", "port": 3005}
    if section is not None:
        master["masterHA"] = section
    (conf / "master.json").write_text(json.dumps({"development": master}))
    return tmp_path


def test_master_json_without_ha_is_none(tmp_path):
    assert ha_config.load(write_master(tmp_path, None), "development") is None
    assert ha_config.load(write_master(tmp_path, {"enabled": False, "zookeeper": "x:1"}),
                          "development") is None
    assert ha_config.load(tmp_path / "no-such-project", "development") is None


def test_master_json_ha_fields_and_defaults(tmp_path):
    base = write_master(tmp_path / "my game", {
        "zookeeper": "127.0.0.1:2181,127.0.0.2:2181",
        "standbys": [{"id": "master-server-2", "host": "127.0.0.2", "port": 3006}]})
    cfg = ha_config.load(base, "development")
    assert cfg.hosts == "127.0.0.1:2181,127.0.0.2:2181"
    assert cfg.path == "/zpomelo/my_game/development"
    assert cfg.session_timeout == ha_config.DEFAULT_SESSION_TIMEOUT
    assert cfg.leader_path == "/zpomelo/my_game/development/leader"
    assert ha_config.master_record(base, "development", "master-server-2").port == 3006
    with pytest.raises(ConfigError, match="no master with id 'nope'"):
        ha_config.master_record(base, "development", "nope")


@pytest.mark.parametrize("section, field, text", [
    ({}, "masterHA.zookeeper", "missing"),
    ({"zookeeper": "z:1", "path": "relative"}, "masterHA.path", "absolute znode path"),
    ({"zookeeper": "z:1", "sessionTimeout": 0.1}, "masterHA.sessionTimeout", "between 1 and 60"),
    ({"zookeeper": "z:1", "standbys": [{"id": "master-server-1", "host": "h", "port": 1}]},
     "masterHA.standbys[0].id", "used twice"),
    ({"zookeeper": "z:1", "standbys": [{"id": "m2", "host": "h", "port": "x"}]},
     "masterHA.standbys[0].port", "integer"),
    ("yes", "masterHA", "must be an object"),
])
def test_master_json_ha_mistakes_name_the_field(tmp_path, section, field, text):
    with pytest.raises(ConfigError) as info:
        ha_config.load(write_master(tmp_path, section), "development")
    assert info.value.field == field and text in str(info.value)


def test_masterha_from_app_py_when_master_json_has_none(tmp_path):
    base = write_master(tmp_path, None)
    (base / "app.py").write_text(
        "def configure(app):\n"
        "    app.route('chat', lambda *a: None)\n"
        "    app.configure('production|development', 'connector', lambda: app.set('x', 1))\n"
        "    app.configure('development', lambda: app.set('masterHA', {\n"
        "        'zookeeper': '127.0.0.1:2181', 'path': '/zpomelo/from-app', 'sessionTimeout': 3}))\n")
    cfg = ha_config.load(base, "development")
    assert (cfg.hosts, cfg.path, cfg.session_timeout) == ("127.0.0.1:2181", "/zpomelo/from-app", 3.0)
    assert ha_config.load(base, "production") is None      # that configure is for development


def test_an_app_py_that_fails_outside_a_server_means_no_ha_from_it(tmp_path):
    base = write_master(tmp_path, None)
    (base / "app.py").write_text("def configure(app):\n    app.current_server.extra['x']\n")
    assert ha_config.load(base, "development") is None
