"""examples/quick (= `zpomelo init --template quick`): join, move, give, pay with pushes on commit."""
import os
import shutil
import subprocess
import sys

import pytest

from zpomelo.testing import InProcessCluster, rounds

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def quick(tmp_path):
    project = tmp_path / "quick"
    run = subprocess.run([sys.executable, "-m", "zpomelo.cli", "init", "--template", "quick", str(project)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert (project / "app" / "models" / "world.py").is_file()
    with InProcessCluster(str(project), "test") as cluster:
        yield cluster


def test_the_example_is_the_template():
    assert os.path.realpath(os.path.join(ROOT, "examples", "quick")) == \
        os.path.realpath(os.path.join(ROOT, "zpomelo", "templates", "quick"))


def login(cluster, uid):
    client = cluster.connect("connector-server-1")
    answer = client.request("connector.entryHandler.login", {"uid": uid})
    assert answer["code"] == 200 and answer["player"]["id"] == uid
    return client


def test_join_move_give_pay_with_pushes_on_commit(quick):
    ann, bob = login(quick, "ann"), login(quick, "bob")
    assert ann.request("area.areaHandler.join", {"areaId": "town"})["code"] == 200
    joined = bob.request("area.areaHandler.join", {"areaId": "town"})
    assert sorted(p["id"] for p in joined["players"]) == ["ann", "bob"]
    assert ann.wait_push("onJoin", timeout=5) == {"uid": "bob", "name": "bob"}
    assert bob.request("area.areaHandler.move", {"areaId": "town", "x": 3, "y": 4}) == {"code": 200}
    assert ann.wait_push("onMove", timeout=5) == {"uid": "bob", "x": 3, "y": 4}

    assert ann.request("player.playerHandler.pick", {"item": "sword"})["items"] == ["sword"]
    assert ann.request("player.playerHandler.give", {"to": "bob", "item": "sword"}) == {"code": 200, "items": []}
    assert bob.wait_push("onGive", timeout=5) == {"from": "ann", "to": "bob", "item": "sword"}
    refused = ann.request("player.playerHandler.give", {"to": "bob", "item": "sword"})
    assert refused == {"code": 409, "error": "you have no 'sword'"}
    assert bob.request("player.playerHandler.me")["player"]["items"] == ["sword"]

    assert ann.request("player.playerHandler.pay", {"to": "bob", "gold": 150})["code"] == 409
    assert ann.request("player.playerHandler.pay", {"to": "bob", "gold": 40}) == {"code": 200, "gold": 60}
    assert bob.request("player.playerHandler.me")["player"]["gold"] == 140
    # leaving an area tells the old one
    assert bob.request("area.areaHandler.join", {"areaId": "forest"})["code"] == 200
    assert ann.wait_push("onLeave", timeout=5) == {"uid": "bob"}


def test_hot_adding_an_area_server_splits_and_loses_nothing(quick):
    """Adding a server moves some areas to it at once (crc32 over more servers); their documents
    are in the store, the old server's cached copies are refused at commit, so every move and
    payment lands exactly once and nothing is split."""
    import gevent

    from zpomelo.config import ServerRecord
    uids = ["p%d" % i for i in range(6)]
    clients = {uid: login(quick, uid) for uid in uids}
    areas = ["a%d" % i for i in range(6)]
    for i, uid in enumerate(uids):
        assert clients[uid].request("area.areaHandler.join", {"areaId": areas[i % 6]})["code"] == 200
    moves = {uid: 0 for uid in uids}
    paid = {uid: 0 for uid in uids}
    stop = gevent.event.Event()

    def play(uid, i):
        client, area = clients[uid], areas[i % 6]
        for step in rounds(stop, seconds=120):   # the default test timeout
            answer = client.request("area.areaHandler.move", {"areaId": area, "x": step, "y": i})
            assert answer == {"code": 200}, answer
            moves[uid] = step
            other = uids[(i + 1) % len(uids)]
            answer = client.request("player.playerHandler.pay", {"to": other, "gold": 1})
            assert answer["code"] in (200, 409), answer
            if answer["code"] == 200:
                paid[uid] += 1
    players = [gevent.spawn(play, uid, i) for i, uid in enumerate(uids)]
    from zpomelo.testing import wait_until
    wait_until(lambda: min(moves.values()) >= 5, 30, message="play before the add")
    from zpomelo.router import crc32_key
    moved = [a for a in areas if crc32_key(a) % 2 != crc32_key(a) % 3]
    assert moved  # some areas really change server with the add
    quick.add(ServerRecord(id="area-server-3", server_type="area", host="127.0.0.1", port=0))
    before = dict(moves)
    wait_until(lambda: all(moves[u] >= before[u] + 5 for u in uids), 30, message="play after the add")
    stop.set()
    gevent.joinall(players, timeout=30, raise_error=True)
    me = {uid: clients[uid].request("player.playerHandler.me")["player"] for uid in uids}
    assert sum(p["gold"] for p in me.values()) == 100 * len(uids)   # nothing made or lost
    for i, uid in enumerate(uids):
        assert me[uid]["area_id"] == areas[i % 6]                    # nobody lost their area
        assert me[uid]["x"] == moves[uid]                            # the last move acknowledged
    for i, area in enumerate(areas):
        here = clients[uids[0]].request("area.areaHandler.join", {"areaId": area})["players"]
        expected = {uids[i]} | ({"p0"})
        assert {p["id"] for p in here} == expected, (area, here)    # one set of members per area
        clients[uids[0]].request("area.areaHandler.join", {"areaId": areas[0]})
