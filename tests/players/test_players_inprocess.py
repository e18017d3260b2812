"""The uid directory in one process (real sockets, real clients): membership changes, several
sessions per uid when switched off, unbind, and the resync repairing a lost update."""
import os

import pytest

from zpomelo.config import ServerRecord
from zpomelo.players import KICK_REASON
from zpomelo.testing import InProcessCluster, wait_until
from zpomelo.uid_directory import owner_of

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps", "players")

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def cluster():
    with InProcessCluster(APP_DIR, "test") as c:
        yield c


def _login(cluster, server_id, uid):
    client = cluster.connect(server_id)
    reply = client.request("connector.entryHandler.login", {"uid": uid})
    assert reply["code"] == 200, reply
    return client


def _shards(cluster):
    return {app.server_id: app.players.shard for app in cluster if app.is_frontend}


def test_each_entry_lives_at_its_owner_only(cluster):
    for n in range(30):
        _login(cluster, "connector-%d" % (1 + n % 3), "u%d" % n)
    view = sorted(cluster.frontend_ids)
    for fid, shard in _shards(cluster).items():
        assert all(owner_of(uid, view) == fid for uid in shard.entries), fid
    assert sum(len(s) for s in _shards(cluster).values()) == 30


def test_a_frontend_joining_after_players_logged_in_answers_for_its_share_at_once(cluster):
    clients = {uid: _login(cluster, "connector-%d" % (1 + n % 3), uid)
               for n, uid in enumerate("early-%d" % n for n in range(60))}
    area = cluster["area-1"]
    newcomer = cluster.add(ServerRecord.from_dict({
        "id": "connector-4", "serverType": "connector", "host": "127.0.0.1", "port": 0,
        "clientPort": 0, "frontend": True}))
    # before any sync reached it, the newcomer owns about a quarter and asks the holders itself
    assert area.push_to_uids(list(clients), "onPush", {"n": 1}) == []
    for client in clients.values():
        assert client.wait_push("onPush", timeout=5) == {"n": 1}
    view = sorted(cluster.frontend_ids)
    wait_until(lambda: sum(len(s) for s in _shards(cluster).values()) == 60
               and all(owner_of(u, view) == f for f, s in _shards(cluster).items() for u in s.entries),
               10, message="the directory to settle on its new owners")
    assert len(newcomer.players.shard) > 0
    late = _login(cluster, "connector-4", "late")
    assert area.push_to_uid("late", "onPush", {"n": 2}) is True
    assert late.wait_push("onPush", timeout=5) == {"n": 2}
    cluster.remove("connector-4")
    assert area.push_to_uids(["late", "early-0"], "onPush", {"n": 3}) == ["late"]
    assert all(len(s.by_frontend.get("connector-4", ())) == 0 for s in _shards(cluster).values())


def test_several_sessions_per_uid_when_switched_off(cluster):
    for app in cluster:
        app.set("oneSessionPerUid", False)
    first = _login(cluster, "connector-1", "twin")
    second = _login(cluster, "connector-2", "twin")
    third = _login(cluster, "connector-2", "twin")
    area = cluster["area-2"]
    assert area.push_to_uid("twin", "onPush", {"all": True}) is True
    for client in (first, second, third):
        assert client.wait_push("onPush", timeout=5) == {"all": True}
    assert len(area.backend_session_service.get_by_uid("twin")) == 3
    assert area.backend_session_service.kick_uid("twin", "all out") == 3
    wait_until(lambda: all(c.closed.is_set() for c in (first, second, third)), 5, message="all kicked")
    assert first.kicked_reason == "all out"


def test_a_relogin_on_the_same_frontend_kicks_the_older_session(cluster):
    old = _login(cluster, "connector-1", "again")
    new = _login(cluster, "connector-1", "again")
    wait_until(lambda: old.closed.is_set(), 5, message="the older session kicked")
    assert old.kicked_reason == KICK_REASON and not new.closed.is_set()
    assert cluster["area-1"].push_to_uid("again", "onPush", {"to": "new"})
    assert new.wait_push("onPush", timeout=5) == {"to": "new"}


def test_unbind_leaves_the_directory_and_global_channels(cluster):
    client = _login(cluster, "connector-2", "unbinder")
    frontend = cluster["connector-2"]
    session = frontend.session_service.get_by_uid("unbinder")[0]
    area = cluster["area-1"]
    assert area.global_channel_service.get_channel("world").add("unbinder") is True
    assert area.global_channel_service.get_channel("world").members() == ["unbinder"]
    session.unbind("unbinder")
    wait_until(lambda: not area.push_to_uid("unbinder", "onPush", {}), 5, message="offline after unbind")
    assert area.global_channel_service.get_channel("world").members() == []
    assert not client.closed.is_set()


def test_the_periodic_resync_repairs_an_entry_an_owner_lost(cluster):
    _login(cluster, "connector-3", "repaired")
    owner = owner_of("repaired", sorted(cluster.frontend_ids))
    cluster[owner].players.shard.release("repaired", "connector-3",
                                         cluster["connector-3"].session_service.get_by_uid("repaired")[0].id)
    area = cluster["area-2"]
    assert area.push_to_uid("repaired", "onPush", {}) is False       # the owner lost it
    cluster["connector-3"].players.sync_all()                         # what the resync timer runs
    wait_until(lambda: area.push_to_uid("repaired", "onPush", {}), 5, message="the entry back")


def test_a_login_whose_directory_owner_is_gone_is_refused_with_a_clear_error(cluster):
    owned_by_3 = next("solo-%d" % n for n in range(1000)
                      if owner_of("solo-%d" % n, sorted(cluster.frontend_ids)) == "connector-3")
    cluster["connector-3"].stop(drain_timeout=0.5)      # stopped, still in everyone's membership
    client = cluster.connect("connector-1")
    reply = client.request("connector.entryHandler.login", {"uid": owned_by_3})
    assert reply["code"] == 500 and "directory owner connector-3" in reply["error"], reply
    assert "try again" in reply["error"]
    cluster.remove("connector-3", stop=False)
    assert client.request("connector.entryHandler.login", {"uid": owned_by_3})["code"] == 200


def test_a_frontend_restarted_under_the_same_id_gets_its_share_back(cluster):
    view = sorted(cluster.frontend_ids)
    owned = [uid for uid in ("back-%d" % n for n in range(200)) if owner_of(uid, view) == "connector-3"][:6]
    for n, uid in enumerate(owned):
        _login(cluster, "connector-%d" % (1 + n % 2), uid)
    wait_until(lambda: set(owned) <= set(cluster["connector-3"].players.shard.entries), 5,
               message="connector-3 to own its share")
    old = cluster.apps.pop("connector-3")     # stopped; the others are not told it left
    old.stop(drain_timeout=0.5)
    restarted = cluster.add(old.current_server)   # same id, new ports: a restart, as the master sees it
    wait_until(lambda: set(owned) <= set(restarted.players.shard.entries), 10,
               message="the holders to sync the restarted owner's share")
    assert cluster["area-1"].push_to_uids(owned, "onPush", {}) == []
