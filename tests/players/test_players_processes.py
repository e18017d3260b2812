"""Players across real processes: push by uid from a backend that never saw the player's frontend,
offline uids, one session per uid under racing logins, a frontend frozen or killed.

One cluster (3 connectors, 2 area backends, under the real master) for the module; the tests that
freeze and kill connector-3 run last. Requests to area name their server in the body.
"""
import os
import signal

import gevent
import pytest

from zpomelo.client import Client
from zpomelo.players import KICK_REASON
from zpomelo.testing import ProcessCluster, wait_until
from zpomelo.testing.process_cluster import copy_project
from zpomelo.uid_directory import owner_of

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps", "players")
CONNECTORS = ["connector-1", "connector-2", "connector-3"]

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    project = copy_project(APP_DIR, tmp_path_factory.mktemp("players") / "game", "test")
    c = ProcessCluster(project, "test").start()
    try:
        wanted = set(CONNECTORS + ["area-1", "area-2"])
        wait_until(lambda: wanted <= set(c.servers()), 30, message="every server up")
        c.rows = c.servers()
        yield c
    finally:
        for pid in _stopped(c):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        c.stop()


def _stopped(c):
    return getattr(c, "frozen", [])


@pytest.fixture
def clients(cluster):
    opened = []

    def connect(server_id):
        client = Client.connect("127.0.0.1", cluster.rows[server_id]["clientPort"], request_timeout=10)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()


def _login(client, uid):
    reply = client.request("connector.entryHandler.login", {"uid": uid})
    assert reply["code"] == 200, reply
    return reply


def _area(client, handler, area, **body):
    body["area"] = area
    return client.request("area.areaHandler." + handler, body)


@pytest.mark.parametrize("player_on,controller_on,area", [
    ("connector-2", "connector-1", "area-1"),
    ("connector-1", "connector-2", "area-2")])
def test_push_by_uid_from_a_backend_that_never_saw_the_players_frontend(clients, player_on, controller_on, area):
    uid = "player-on-" + player_on
    player = clients(player_on)
    _login(player, uid)
    controller = clients(controller_on)
    reply = _area(controller, "push", area, uids=[uid], route="onPush", body={"n": 1})
    assert reply["server"] == area
    assert player_on not in reply["seen"], reply        # this backend never ran a request from there
    assert reply["offline"] == []
    assert player.wait_push("onPush", timeout=5) == {"n": 1}
    assert _area(controller, "push_one", area, uid=uid, body={"n": 2}) == {"online": True}
    assert player.wait_push("onPush", timeout=5) == {"n": 2}
    # channel add without a frontend id: the directory says where the player is
    added = _area(controller, "cadd", area, name="room-" + uid, uid=uid)
    assert added == {"added": True, "frontend": player_on}
    assert _area(controller, "cpush", area, name="room-" + uid, body={"n": 3})["sent"] == 1
    assert player.wait_push("onChannel", timeout=5) == {"n": 3}


def test_push_to_an_offline_uid_names_it(clients):
    online = clients("connector-3")
    _login(online, "here")
    controller = clients("connector-1")
    reply = _area(controller, "push", "area-1", uids=["here", "nobody", "ghost"], body={"x": 1})
    assert reply["offline"] == ["nobody", "ghost"]
    assert online.wait_push("onPush", timeout=5) == {"x": 1}
    assert _area(controller, "push_one", "area-2", uid="nobody") == {"online": False}
    assert _area(controller, "cadd", "area-1", name="r", uid="nobody") == {"offline": ["nobody"]}
    assert _area(controller, "gadd", "area-1", name="g", uid="nobody") == {"offline": ["nobody"]}
    assert _area(controller, "sessions_of", "area-1", uid="nobody")["directory"] == []


def test_a_logout_leaves_the_directory(clients):
    player = clients("connector-2")
    _login(player, "leaver")
    controller = clients("connector-1")
    assert _area(controller, "push_one", "area-1", uid="leaver") == {"online": True}
    player.close()
    wait_until(lambda: _area(controller, "push_one", "area-1", uid="leaver") == {"online": False},
               10, message="the closed session to leave the directory")


@pytest.mark.timeout(300)
def test_two_logins_of_one_uid_racing_on_two_frontends_leave_exactly_one(clients, cluster):
    controller = clients("connector-3")
    outcomes = {"first_kicked": 0, "second_kicked": 0}
    for n in range(100):
        uid = "racer-%d" % n
        a, b = clients("connector-1"), clients("connector-2")
        answers = {}
        a.request_async("connector.entryHandler.login", {"uid": uid}, lambda e, r: answers.__setitem__("a", (e, r)))
        b.request_async("connector.entryHandler.login", {"uid": uid}, lambda e, r: answers.__setitem__("b", (e, r)))
        wait_until(lambda: len(answers) == 2 and (a.closed.is_set() or b.closed.is_set()), 10,
                   message="round %d: both logins answered and one client kicked" % n)
        gevent.sleep(0.02)   # room for a second (wrong) kick to arrive before we look
        kicked = [c for c in (a, b) if c.closed.is_set()]
        assert len(kicked) == 1, (n, answers, a.close_reason, b.close_reason)
        loser = kicked[0]
        winner = b if loser is a else a
        assert loser.kicked_reason == KICK_REASON, (n, loser.close_reason)
        error, reply = answers["a" if winner is a else "b"]
        assert error is None and reply["code"] == 200, (n, answers)
        where = _area(controller, "sessions_of", "area-%d" % (1 + n % 2), uid=uid)
        assert where["directory"] == [[reply["server"], reply["sid"]]], (n, where, reply)
        assert sum(len(sids) for sids in where["held"].values()) == 1, (n, where)
        assert winner.request("connector.entryHandler.whoami")["uid"] == uid
        outcomes["first_kicked" if loser is a else "second_kicked"] += 1
        winner.close()
    assert sum(outcomes.values()) == 100


def test_one_session_per_uid_kicks_the_older_login_on_another_frontend(clients):
    first = clients("connector-1")
    _login(first, "twice")
    second = clients("connector-2")
    _login(second, "twice")
    wait_until(lambda: first.closed.is_set(), 5, message="the older session kicked")
    assert first.kicked_reason == KICK_REASON
    controller = clients("connector-3")
    assert _area(controller, "push", "area-1", uids=["twice"], body={"to": "second"})["offline"] == []
    assert second.wait_push("onPush", timeout=5) == {"to": "second"}


def test_global_channel_members_are_connected_uids_and_leave_on_disconnect(clients):
    controller = clients("connector-3")
    ann, bob = clients("connector-1"), clients("connector-2")
    _login(ann, "g-ann")
    _login(bob, "g-bob")
    assert _area(controller, "gadd", "area-1", name="world", uid="g-ann") == {"added": True}
    assert _area(controller, "gadd", "area-2", name="world", uid="g-bob") == {"added": True}
    # a uid not connected on the frontend named is not made a member there
    assert _area(controller, "gadd_on", "area-1", name="world", uid="g-bob", frontend="connector-1") == {"added": False}
    assert _area(controller, "gmembers", "area-1", name="world") == {"members": ["g-ann", "g-bob"], "unreachable": []}
    bob.close()
    wait_until(lambda: _area(controller, "gmembers", "area-1", name="world")["members"] == ["g-ann"], 10,
               message="the disconnected member to leave the global channel")


def _freeze(cluster, server_id):
    pid = cluster.rows[server_id]["pid"]
    cluster.frozen = getattr(cluster, "frozen", []) + [pid]
    os.kill(pid, signal.SIGSTOP)
    return pid


def _thaw(cluster, pid):
    os.kill(pid, signal.SIGCONT)
    cluster.frozen.remove(pid)


def _uid_owned_by(owner, prefix):
    for n in range(10000):
        uid = "%s-%d" % (prefix, n)
        if owner_of(uid, CONNECTORS) == owner:
            return uid
    raise AssertionError("no uid owned by %s" % owner)


@pytest.mark.timeout(120)
def test_a_frozen_frontend_is_reported_unreachable_and_the_rest_keeps_working(clients, cluster):
    controller = clients("connector-1")
    on1, on3 = clients("connector-1"), clients("connector-3")
    owned_by_3 = _uid_owned_by("connector-3", "frozen-owner")   # held on connector-1
    _login(on1, owned_by_3)
    _login(on3, "frozen-member")
    for uid in (owned_by_3, "frozen-member"):
        assert _area(controller, "gadd", "area-1", name="frozen-world", uid=uid) == {"added": True}
    pid = _freeze(cluster, "connector-3")
    try:
        members = _area(controller, "gmembers", "area-1", name="frozen-world")
        assert members == {"members": [owned_by_3], "unreachable": ["connector-3"]}
        assert _area(controller, "gpush", "area-2", name="frozen-world", text="hi") == {"code": 200}
        assert on1.wait_push("onGlobal", timeout=5) == {"text": "hi"}
        # its directory owner is frozen: the backend asks the other frontends instead
        reply = _area(controller, "push", "area-2", uids=[owned_by_3], body={"via": "scatter"})
        assert reply["offline"] == []
        assert on1.wait_push("onPush", timeout=5) == {"via": "scatter"}
    finally:
        _thaw(cluster, pid)


@pytest.mark.timeout(120)
def test_a_killed_frontend_leaves_the_directory_and_its_uids_are_offline(clients, cluster):
    controller = clients("connector-1")
    victims = [clients("connector-3") for _ in range(3)]
    for n, client in enumerate(victims):
        _login(client, "victim-%d" % n)
    survivor = clients("connector-2")
    owned_by_3 = _uid_owned_by("connector-3", "survivor")
    # right after the frozen test, connector-2's RPC link to connector-3 may still be reconnecting:
    # a bind whose directory owner cannot be reached is refused with an error saying to try again
    wait_until(lambda: survivor.request("connector.entryHandler.login", {"uid": owned_by_3})["code"] == 200,
               15, message="a login owned by connector-3 to succeed")
    uids = ["victim-0", "victim-1", "victim-2"]
    assert _area(controller, "push", "area-1", uids=uids)["offline"] == []
    os.kill(cluster.rows["connector-3"]["pid"], signal.SIGKILL)
    wait_until(lambda: _area(controller, "push", "area-1", uids=uids + [owned_by_3],
                             body={"after": "kill"})["offline"] == uids,
               20, message="the killed frontend's uids to be offline")
    assert survivor.wait_push("onPush", timeout=5) == {"after": "kill"}
    assert _area(controller, "sessions_of", "area-2", uid="victim-0")["directory"] == []
