"""examples/quick (= `zpomelo init --template quick`): join, move, give, pay with pushes on commit."""
import os
import shutil
import subprocess
import sys

import pytest

from zpomelo.testing import InProcessCluster

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
