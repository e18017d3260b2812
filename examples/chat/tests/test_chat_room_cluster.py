"""The whole chat cluster (gate, two connectors, two chat servers) in the test process, with real
clients: zpomelo's ``cluster`` and ``connect`` fixtures."""
import pytest

pytestmark = pytest.mark.timeout(60)


def enter(connect, connector, username, rid="lobby"):
    client = connect(connector, transport="ws")
    reply = client.request("connector.entryHandler.enter", {"username": username, "rid": rid})
    return client, reply


def test_the_gate_hands_out_a_running_connector(cluster, connect):
    reply = connect("gate-server-1").request("gate.gateHandler.queryEntry", {"uid": "ann"})
    assert reply["code"] == 200
    assert reply["port"] in [cluster.client_port(c) for c in ("connector-server-1", "connector-server-2")]


def test_users_on_two_connectors_chat_in_one_room(connect):
    ann, reply = enter(connect, "connector-server-1", "ann")
    assert reply == {"users": ["ann"]}
    bob, reply = enter(connect, "connector-server-2", "bob")
    assert sorted(reply["users"]) == ["ann", "bob"]
    assert ann.wait_push("onAdd") == {"user": "bob"}

    send = {"rid": "lobby", "content": "hi", "from": "bob", "target": "*"}  # the protos require every field
    assert bob.request("chat.chatHandler.send", send) == {"code": 200}
    assert ann.wait_push("onChat") == {"msg": "hi", "from": "bob", "target": "*"}

    bob.close()
    assert ann.wait_push("onLeave") == {"user": "bob"}
