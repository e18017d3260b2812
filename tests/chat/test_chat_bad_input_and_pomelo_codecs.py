"""The chat example against Pomelo's own client codecs (npm pomelo-protocol + pomelo-protobuf),
and bad input from clients: huge messages and packages, a client that skips the gate."""
import json
import os
import shutil

import pytest
from gevent import subprocess

from zpomelo.testing import InProcessCluster

pytestmark = pytest.mark.timeout(60)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHAT_DIR = os.path.join(ROOT, "examples", "chat")
NODE_DIR = os.path.join(ROOT, "tests", "node")


@pytest.fixture(scope="module")
def cluster():
    with InProcessCluster(CHAT_DIR, "test") as c:
        yield c


def _node_ready():
    modules = os.path.join(NODE_DIR, "node_modules")
    return shutil.which("node") and all(
        os.path.isdir(os.path.join(modules, m)) for m in ("pomelo-protocol", "pomelo-protobuf", "ws"))


def test_pomelo_client_codecs_chat_through_gate_and_connectors(cluster):
    if not _node_ready():
        if os.environ.get("CI"):
            pytest.fail("node and tests/node/node_modules are required in CI (tests/install-system-deps.sh)")
        pytest.skip("node or tests/node/node_modules missing: run tests/install-system-deps.sh")
    run = subprocess.run(["node", os.path.join(NODE_DIR, "pomelo_chat_client.js"),
                          str(cluster.client_port("gate-server-1"))],
                         capture_output=True, text=True, timeout=40)
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(run.stdout.strip().splitlines()[-1])["results"]
    assert results["useDict"] and results["useProto"] and results["heartbeat"] == 3
    assert results["aliceUsers"] == {"users": ["alice"]}
    assert results["bobUsers"] == {"users": ["alice", "bob"]}
    assert results["added"] == {"user": "bob"}
    assert results["sent"] == {"code": 200}
    assert results["chat"] == {"msg": "hello from pomelo-protobuf", "from": "bob", "target": "*"}
    assert results["left"] == {"user": "bob"}


def _client(cluster, server_id="connector-server-1"):
    return cluster.connect(server_id, "ws")


def test_a_client_may_skip_the_gate_and_enter_a_connector_directly(cluster):
    client = _client(cluster, "connector-server-2")
    assert client.request("connector.entryHandler.enter", {"username": "direct", "rid": "d"}) == {"users": ["direct"]}
    client.close()


def test_huge_messages_are_refused_and_huge_packages_close_only_their_connection(cluster):
    talker, bystander = _client(cluster), _client(cluster)
    talker.request("connector.entryHandler.enter", {"username": "talker", "rid": "big"})
    bystander.request("connector.entryHandler.enter", {"username": "bystander", "rid": "big"})
    reply = talker.request("chat.chatHandler.send", {"rid": "big", "content": "x" * 5000, "from": "talker", "target": "*"})
    assert reply["code"] == 500 and "at most 2000 characters" in reply["error"]
    talker.request("chat.chatHandler.send", {"rid": "big", "content": "still here", "from": "talker", "target": "*"})
    assert bystander.wait_push("onChat", 5)["msg"] == "still here"
    with pytest.raises(Exception):  # over the connector's 64 KiB package limit: closed
        talker.request("chat.chatHandler.send", {"rid": "big", "content": "y" * 70000, "from": "t", "target": "*"},
                       timeout=5)
    assert talker.closed.wait(5)
    assert bystander.wait_push("onLeave", 5) == {"user": "talker"}
    bystander.request("chat.chatHandler.send", {"rid": "big", "content": "alive", "from": "b", "target": "*"})
    assert bystander.wait_push("onChat", 5)["msg"] == "alive"
    bystander.close()
