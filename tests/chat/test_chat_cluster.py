"""The chat example's game code in a whole cluster (gate, 2 connectors, 2 chat servers) in one
process, driven by zpomelo.client over real sockets, with chatofpomelo's protos and dictionary."""
import os
import zlib

import pytest

from zpomelo.testing import InProcessCluster

pytestmark = pytest.mark.timeout(60)

CHAT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "examples", "chat")
CONNECTORS = ["connector-server-1", "connector-server-2"]
CHATS = ["chat-server-1", "chat-server-2"]


@pytest.fixture(scope="module")
def cluster():
    with InProcessCluster(CHAT_DIR, "test") as c:
        yield c


@pytest.fixture
def connect(cluster):
    yield lambda server_id, transport="ws": cluster.connect(server_id, transport)
    cluster.close_clients()


def crc_pick(key, ids):
    return ids[zlib.crc32(key.encode("utf-8")) % len(ids)]


def enter(connect, username, rid, connector=None, transport="ws"):
    client = connect(connector or crc_pick(username, CONNECTORS), transport)
    reply = client.request("connector.entryHandler.enter", {"username": username, "rid": rid})
    return client, reply


def test_gate_points_at_the_connector_picked_by_crc32_of_the_uid(cluster, connect):
    gate = connect("gate-server-1")
    for uid in ["alice", "bob", "carol", "dave", "émile"]:
        reply = gate.request("gate.gateHandler.queryEntry", {"uid": uid})
        expected = crc_pick(uid, CONNECTORS)
        assert reply == {"code": 200, "host": "127.0.0.1", "port": cluster.client_port(expected)}


def test_gate_answers_500_without_a_uid(connect):
    gate = connect("gate-server-1")
    assert gate.request("gate.gateHandler.queryEntry", {"uid": ""}) == {"code": 500}


def test_connectors_hand_out_chatofpomelo_dictionary_protos_and_heartbeat(connect):
    sys = connect("connector-server-1").handshake_sys
    assert sys["heartbeat"] == 3
    assert sys["useDict"] is True and sys["useProto"] is True
    assert sys["routeToCode"] == {
        "chat.chatHandler.send": 1, "connector.entryHandler.enter": 2, "gate.gateHandler.queryEntry": 3,
        "onChat": 4, "onAdd": 5, "onLeave": 6,
    }
    assert sorted(sys["protos"]["client"]) == [
        "chat.chatHandler.send", "connector.entryHandler.enter", "gate.gateHandler.queryEntry"]
    assert sorted(sys["protos"]["server"]) == ["onAdd", "onChat", "onLeave"]


def test_the_gate_uses_protobuf_without_dictionary_or_heartbeat(connect):
    sys = connect("gate-server-1").handshake_sys
    assert sys.get("useProto") is True
    assert not sys.get("useDict") and "heartbeat" not in sys


def test_users_meet_across_connectors_and_chat_to_the_room(connect):
    rid = "room-a"
    ann, reply = enter(connect, "ann", rid, CONNECTORS[0])
    assert reply == {"users": ["ann"]}
    bob, reply = enter(connect, "bob", rid, CONNECTORS[1])
    assert sorted(reply["users"]) == ["ann", "bob"]
    assert ann.wait_push("onAdd") == {"user": "bob"}

    assert bob.request("chat.chatHandler.send",
                       {"rid": rid, "content": "hi all", "from": "bob", "target": "*"}) == {"code": 200}
    expected = {"msg": "hi all", "from": "bob", "target": "*"}
    assert ann.wait_push("onChat") == expected
    assert bob.wait_push("onChat") == expected


def test_private_message_reaches_only_its_target(connect):
    rid = "room-b"
    ann, _ = enter(connect, "ann", rid, CONNECTORS[0])
    bob, _ = enter(connect, "bob", rid, CONNECTORS[1])
    cy, _ = enter(connect, "cy", rid, CONNECTORS[1])
    ann.wait_push("onAdd")
    ann.wait_push("onAdd")
    bob.wait_push("onAdd")

    assert ann.request("chat.chatHandler.send",
                       {"rid": rid, "content": "psst", "from": "ann", "target": "bob"}) == {"code": 200}
    assert bob.wait_push("onChat") == {"msg": "psst", "from": "ann", "target": "bob"}
    # Pushes from the room's chat server arrive in order: cy's next onChat is the marker.
    ann.request("chat.chatHandler.send", {"rid": rid, "content": "marker", "from": "ann", "target": "*"})
    assert cy.wait_push("onChat")["msg"] == "marker"
    assert ann.wait_push("onChat")["msg"] == "marker"  # the sender got no copy of "psst" either


def test_the_sender_name_comes_from_the_session_not_the_message(connect):
    rid = "room-c"
    ann, _ = enter(connect, "ann", rid)
    ann.request("chat.chatHandler.send", {"rid": rid, "content": "x", "from": "mallory", "target": "*"})
    assert ann.wait_push("onChat")["from"] == "ann"


def test_a_name_already_in_the_room_is_refused_even_on_another_connector(connect):
    rid = "room-d"
    enter(connect, "ann", rid, CONNECTORS[0])
    again, reply = enter(connect, "ann", rid, CONNECTORS[1])
    assert reply == {"code": 500, "error": True}
    # The refused connection may try another name.
    reply = again.request("connector.entryHandler.enter", {"username": "ann2", "rid": rid})
    assert sorted(reply["users"]) == ["ann", "ann2"]


def test_closing_a_connection_pushes_on_leave_and_frees_the_name(connect):
    rid = "room-e"
    ann, _ = enter(connect, "ann", rid, CONNECTORS[0])
    bob, _ = enter(connect, "bob", rid, CONNECTORS[1])
    ann.wait_push("onAdd")
    bob.close()
    assert ann.wait_push("onLeave") == {"user": "bob"}
    _, reply = enter(connect, "bob", rid, CONNECTORS[0])
    assert sorted(reply["users"]) == ["ann", "bob"]


def test_rooms_are_spread_over_the_chat_servers_by_room_id(cluster, connect):
    rooms = ["r%d" % i for i in range(8)]
    for rid in rooms:
        enter(connect, "u", rid)
    for rid in rooms:
        owner = crc_pick(rid, CHATS)
        other = [c for c in CHATS if c != owner][0]
        assert cluster[owner].channel_service.get_channel(rid) is not None
        assert cluster[other].channel_service.get_channel(rid) is None


@pytest.mark.parametrize("body", [
    {"username": "", "rid": "r"}, {"username": "a*b", "rid": "r"}, {"username": "x" * 21, "rid": "r"},
    {"username": "ann", "rid": ""},
])
def test_enter_refuses_bad_names_with_a_reason(connect, body):
    client = connect("connector-server-1", "tcp")
    reply = client.request("connector.entryHandler.enter", body)
    assert reply["code"] == 500 and "1 to 20 characters" in reply["error"]


def test_enter_twice_on_one_connection_is_refused(connect):
    client, _ = enter(connect, "twice", "room-f")
    reply = client.request("connector.entryHandler.enter", {"username": "twice", "rid": "room-g"})
    assert reply["code"] == 500 and "already entered" in reply["error"]


def test_send_needs_a_room_content_and_a_present_target(connect):
    client = connect("connector-server-1")
    reply = client.request("chat.chatHandler.send", {"rid": "x", "content": "hi", "from": "a", "target": "*"})
    assert reply["code"] == 500 and "enter a room first" in reply["error"]

    ann, _ = enter(connect, "ann", "room-h")
    reply = ann.request("chat.chatHandler.send", {"rid": "room-h", "content": "", "from": "ann", "target": "*"})
    assert reply["code"] == 500 and "content" in reply["error"]
    reply = ann.request("chat.chatHandler.send", {"rid": "room-h", "content": "hi", "from": "ann", "target": "zed"})
    assert reply["code"] == 500 and "zed is not in room room-h" in reply["error"]
