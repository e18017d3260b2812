"""zpomelo.pushes on a real in-process cluster: packed once, the RPC fallback, the outbox seam."""
import msgpack
import pytest

from zpomelo import pushes as pushes_module
from zpomelo.rpc.envelope import EnvelopePacker, join_frame, unpack_requests
from zpomelo.sysapi import PUSH, SYS

pytestmark = pytest.mark.timeout(60)


def _enter(client, uid, rid="room"):
    assert client.request("connector.entryHandler.entry", {"uid": uid, "rid": rid})["code"] == 200


def test_a_broadcast_to_every_frontend_is_packed_once(cluster, connect, monkeypatch):
    a = connect("connector-1")
    b = connect("connector-2", "ws")
    _enter(a, "pa")
    _enter(b, "pb")
    packed = []
    real_pack = pushes_module.pack
    monkeypatch.setattr(pushes_module, "pack", lambda m: packed.append(m) or real_pack(m))
    chat = cluster["chat-1"]
    assert chat.channel_service.broadcast("connector", "onNews", {"n": 1}) == 2
    assert a.wait_push("onNews", 5) == {"n": 1}
    assert b.wait_push("onNews", 5) == {"n": 1}
    assert packed == [["bcast", "onNews", {"n": 1}, False]]


def test_a_frontend_broadcasting_delivers_to_itself_in_place(cluster, connect, monkeypatch):
    a = connect("connector-1")
    b = connect("connector-2")
    _enter(a, "qa")
    _enter(b, "qb")
    packed = []
    real_pack = pushes_module.pack
    monkeypatch.setattr(pushes_module, "pack", lambda m: packed.append(m) or real_pack(m))
    cluster["connector-1"].channel_service.broadcast("connector", "onNews", {"n": 2})
    assert a.wait_push("onNews", 5) == {"n": 2}
    assert b.wait_push("onNews", 5) == {"n": 2}
    assert len(packed) == 1   # packed for connector-2 only; connector-1 got the message itself


def test_the_rpc_fallback_carries_the_packed_push_without_a_second_envelope(cluster, connect):
    client = connect("connector-2")
    _enter(client, "fb")
    message = ["push", "onLate", {"x": "y"}, ["fb"]]
    payload = msgpack.packb(message, use_bin_type=True)
    # what goes on the wire: the push is the notify's args, not a bytes value inside them
    envelope = EnvelopePacker().notify_packed(SYS, PUSH, payload)
    assert unpack_requests(join_frame([envelope])) == [[1, 0, SYS, PUSH, message]]
    assert envelope.endswith(payload)
    area = cluster["area-1"]
    area.pushes.fallback("connector-2", payload)   # the bus's fallback path, used for real
    assert client.wait_push("onLate", 5) == {"x": "y"}
    assert area.pushes.stats["fallbacks"] == 1 and area.pushes.stats["lost"] == 0


def test_a_fallback_to_an_unknown_frontend_is_counted_as_lost(cluster):
    area = cluster["area-1"]
    area.pushes.fallback("no-such-frontend", msgpack.packb(["push", "r", {}, ["u"]]))
    assert area.pushes.stats["lost"] == 1


def test_pushes_held_by_a_greenlet_hook_are_sent_only_when_delivered(cluster, connect):
    a = connect("connector-1")
    b = connect("connector-2")
    _enter(a, "ha", "held")
    _enter(b, "hb", "held")
    chat = cluster["chat-1"]
    channel = chat.channel_service.get_channel("held", create=True)
    channel.add("ha", "connector-1")
    channel.add("hb", "connector-2")
    held = []
    with chat.pushes.hold(lambda *push: held.append(push)):
        channel.push("onHeld", {"n": 1})
        channel.push("onHeld", {"n": 2})
    assert len(held) == 4 and chat.pushes.stats["held"] == 4
    # nothing went out: a push sent after the hold is the first either client sees
    channel.push("onMark", {})
    assert a.next_push(5) == ("onMark", {}) and b.next_push(5) == ("onMark", {})
    for push in held:              # "commit": the held pushes, in order
        chat.pushes.deliver(*push)
    assert [a.wait_push("onHeld", 5), a.wait_push("onHeld", 5)] == [{"n": 1}, {"n": 2}]
    assert [b.wait_push("onHeld", 5), b.wait_push("onHeld", 5)] == [{"n": 1}, {"n": 2}]


def test_an_undecodable_bus_message_is_dropped_and_counted(cluster, connect):
    client = connect("connector-1")
    _enter(client, "bad")
    frontend = cluster["connector-1"]
    frontend.pushes.on_bus("f", b"\xc1")               # not msgpack
    frontend.pushes.deliver_here(["nonsense", 1])      # unknown kind
    frontend.pushes.deliver_here(["push", "r"])        # wrong shape
    assert frontend.pushes.stats["bad_messages"] == 3
    cluster["chat-1"].pushes.to_uids("connector-1", "onOk", {"still": "works"}, ["bad"])
    assert client.wait_push("onOk", 5) == {"still": "works"}
