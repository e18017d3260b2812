"""A whole cluster (2 connectors, 2 chat, 1 area) in one process, driven by real clients."""
import zlib

import gevent
import pytest

from zpomelo.testing import rounds, wait_until

pytestmark = pytest.mark.timeout(60)


def chat_for(key):
    return ["chat-1", "chat-2"][(zlib.crc32(key.encode()) & 0xFFFFFFFF) % 2]


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_local_handler_and_forward_to_router_choice(cluster, connect, transport):
    client = connect("connector-1", transport)
    assert client.request("connector.entryHandler.echo", {"a": 1}) == {"server": "connector-1", "msg": {"a": 1}}
    for rid in ["r1", "r2", "r3", "r4", "room-x"]:
        client.request("connector.entryHandler.whoami", {})
    answer = client.request("connector.entryHandler.entry", {"uid": "alice", "rid": "r1"})
    assert answer["code"] == 200 and answer["count"] == 1
    echo = client.request("chat.chatHandler.echo", {"x": 2})
    assert echo == {"server": chat_for("r1"), "msg": {"x": 2}}


def test_routes_follow_the_room_on_both_frontends(cluster, connect):
    seen = set()
    for i, rid in enumerate(["alpha", "beta", "gamma", "delta", "eps", "zeta"]):
        client = connect("connector-%d" % (1 + i % 2))
        client.request("connector.entryHandler.entry", {"uid": "u%d" % i, "rid": rid})
        server = client.request("chat.chatHandler.echo", {})["server"]
        assert server == chat_for(rid)
        seen.add(server)
    assert seen == {"chat-1", "chat-2"}


def test_channel_push_reaches_members_on_both_frontends_and_nobody_else(cluster, connect):
    a = connect("connector-1")
    b = connect("connector-2", "ws")
    outsider = connect("connector-2")
    a.request("connector.entryHandler.entry", {"uid": "a", "rid": "room"})
    b.request("connector.entryHandler.entry", {"uid": "b", "rid": "room"})
    outsider.request("connector.entryHandler.entry", {"uid": "c", "rid": "other"})
    assert a.request("chat.chatHandler.send", {"content": "hi"})["code"] == 200
    assert a.wait_push("onChat", 5) == {"from": "a", "content": "hi"}
    assert b.wait_push("onChat", 5) == {"from": "a", "content": "hi"}
    # the outsider's own message proves its push path works and that it got nothing before
    outsider.request("chat.chatHandler.send", {"content": "me"})
    assert outsider.next_push(5) == ("onChat", {"from": "c", "content": "me"})


def test_channel_member_leaves_when_the_client_closes(cluster, connect):
    a = connect("connector-1")
    b = connect("connector-2")
    a.request("connector.entryHandler.entry", {"uid": "a", "rid": "room"})
    b.request("connector.entryHandler.entry", {"uid": "b", "rid": "room"})
    chat = cluster[chat_for("room")]
    assert sorted(chat.channel_service.get_channel("room").members()) == ["a", "b"]
    b.close()
    wait_until(lambda: chat.channel_service.get_channel("room").members() == ["a"], 5,
               message="b to leave the channel")


def test_backend_session_bind_and_push_seen_by_next_request(cluster, connect):
    client = connect("connector-1")
    assert client.request("chat.chatHandler.bind", {"uid": "bob", "rid": "r9"})["code"] == 200
    who = client.request("connector.entryHandler.whoami", {})
    assert who["uid"] == "bob" and who["rid"] == "r9"
    client.request("chat.chatHandler.set_level", {"level": 7})
    assert client.request("chat.chatHandler.get_level", {}) == {"level": 7}


def test_backend_session_service_kicks_by_uid(cluster, connect):
    victim = connect("connector-1")
    victim.request("connector.entryHandler.entry", {"uid": "victim", "rid": "r"})
    other = connect("connector-1")
    other.request("connector.entryHandler.entry", {"uid": "other", "rid": "r"})
    assert other.request("chat.chatHandler.kick_user", {"uid": "victim"}) == {"kicked": 1}
    assert victim.closed.wait(5)
    assert victim.kicked_reason == "kicked by chat"
    assert other.request("connector.entryHandler.echo", {})["server"] == "connector-1"


def test_rpc_between_backends_to_server_and_star(cluster, connect):
    client = connect("connector-1")
    client.request("connector.entryHandler.entry", {"uid": "r", "rid": "rpc"})
    assert client.request("chat.chatHandler.ask_area", {"x": 5}) == {"area": {"server": "area-1", "x": 5}}
    assert client.request("chat.chatHandler.ask_chat", {"id": "chat-2"}) == {"one": "chat-2"}
    assert client.request("chat.chatHandler.ask_all_chats", {}) == {"all": {"chat-1": "chat-1", "chat-2": "chat-2"}}


def test_remote_errors_and_timeouts_reach_the_caller(cluster, connect):
    client = connect("connector-1")
    client.request("connector.entryHandler.entry", {"uid": "e", "rid": "err"})
    err = client.request("chat.chatHandler.remote_error", {})
    assert err["type"] == "AreaFull" and "the area is full" in err["message"]
    slow = client.request("chat.chatHandler.remote_timeout", {})
    assert slow["error"] == "RpcTimeout" and slow["elapsed"] < 2.0


def test_broadcast_and_global_channel_from_a_server_with_no_member(cluster, connect):
    a = connect("connector-1")
    b = connect("connector-2")
    a.request("connector.entryHandler.entry", {"uid": "ga", "rid": "g"})
    b.request("connector.entryHandler.entry", {"uid": "gb", "rid": "g"})
    a.request("chat.chatHandler.broadcast", {"text": "all"})
    assert a.wait_push("onBroadcast", 5) == {"text": "all"}
    assert b.wait_push("onBroadcast", 5) == {"text": "all"}
    a.request("connector.entryHandler.join_global", {"name": "world"})
    b.request("connector.entryHandler.join_global", {"name": "world"})
    # area-1 holds no member and no session: it pushes to the global channel
    cluster["area-1"].global_channel_service.get_channel("world").push("onGlobal", {"text": "hello"})
    assert a.wait_push("onGlobal", 5) == {"text": "hello"}
    assert b.wait_push("onGlobal", 5) == {"text": "hello"}
    assert sorted(cluster["chat-1"].global_channel_service.get_channel("world").members()) == ["ga", "gb"]


def test_thousand_requests_from_one_session_come_back_in_order(cluster, connect):
    client = connect("connector-1")
    client.request("connector.entryHandler.entry", {"uid": "seq", "rid": "seq"})
    answers = []
    done = gevent.event.Event()

    def got(error, body):
        answers.append(body["n"] if error is None else error)
        if len(answers) == 1000:
            done.set()
    for n in range(1000):
        client.request_async("chat.chatHandler.seq", {"n": n}, got, timeout=20)
    assert done.wait(20)
    assert answers == list(range(1000))


def test_handler_errors_unknown_routes_and_private_names(cluster, connect):
    client = connect("connector-1")
    assert client.request("connector.entryHandler.nothing", {}) == {}
    failed = client.request("connector.entryHandler.fail", {})
    assert failed["code"] == 500 and "entry failed on purpose" in failed["error"]
    assert client.request("connector.entryHandler._left", {})["code"] == 500
    assert client.request("connector.entryHandler.__init__", {})["code"] == 500
    assert client.request("connector.nope.nope", {})["code"] == 500
    assert client.request("nosuchtype.h.m", {})["code"] == 500
    assert client.request("chat.chatHandler.nope", {})["code"] == 500
    hung = client.request("connector.entryHandler.hang", {}, timeout=5)
    assert hung["code"] == 500 and "timed out" in hung["error"]
    assert client.request("connector.entryHandler.echo", {"still": "alive"})["msg"] == {"still": "alive"}


def test_hot_added_backend_joins_routing(cluster, connect):
    from zpomelo.config import ServerRecord
    cluster.add(ServerRecord(id="chat-3", server_type="chat", host="127.0.0.1", port=0))
    servers = [r.id for r in cluster["connector-1"].get_servers_by_type("chat")]
    assert servers == ["chat-1", "chat-2", "chat-3"]
    client = connect("connector-1")
    assert client.request("chat.chatHandler.ask_chat", {"id": "chat-3"}) == {"one": "chat-3"}


def test_rpc_filters_see_every_call_and_unknown_targets_fail_clearly(cluster, connect):
    from zpomelo.errors import ServerGone
    seen = []

    class Recorder:
        def before(self, server_id, service, method, args):
            seen.append(("before", server_id, service, method))

        def after(self, server_id, service, method, args, result, error):
            seen.append(("after", server_id, service, method, error is None))

    chat = cluster["chat-1"]
    chat.rpc_filter(Recorder())
    assert chat.rpc.area.areaRemote.ping("any-key", 1) == {"server": "area-1", "x": 1}
    assert seen == [("before", "area-1", "areaRemote", "ping"), ("after", "area-1", "areaRemote", "ping", True)]
    with pytest.raises(ServerGone) as no_type:
        chat.rpc.nosuch.someRemote.m("key")
    assert "no nosuch server is up" in str(no_type.value)
    with pytest.raises(ServerGone) as no_id:
        chat.rpc.chat.chatRemote.whoami.to_server("ghost-9")
    assert "ghost-9" in str(no_id.value)
    from zpomelo.errors import RpcError
    with pytest.raises(RpcError) as no_method:
        chat.rpc.area.areaRemote.no_such_method("k")
    assert "no remote area.areaRemote.no_such_method" in str(no_method.value)


def test_stopping_a_frontend_drains_forwarded_requests(cluster, connect):
    client = connect("connector-1")
    client.request("connector.entryHandler.entry", {"uid": "drain", "rid": "drain"})
    answers = []
    client.request_async("chat.chatHandler.slow", {"seconds": 0.3}, lambda e, b: answers.append((e, b)), timeout=10)
    frontend = cluster["connector-1"]
    wait_until(lambda: frontend.frontend.forwarding == 1, 5, message="the request to be forwarded")
    frontend.stop(drain_timeout=5)
    wait_until(lambda: answers, 5, message="the drained answer to reach the client")
    assert answers[0][0] is None and answers[0][1]["slept"] == 0.3
    assert frontend.frontend.forwarding == 0


def test_a_call_to_our_own_server_fails_like_a_remote_one(cluster):
    from zpomelo.errors import RpcError
    area = cluster["area-1"]
    with pytest.raises(RpcError) as local:
        area.rpc.area.areaRemote.explode.to_server("area-1")
    with pytest.raises(RpcError) as remote:
        cluster["chat-1"].rpc.area.areaRemote.explode.to_server("area-1")
    for error in (local.value, remote.value):
        assert error.remote_type == "AreaFull" and error.code == 503 and "the area is full" in str(error)


def test_an_error_answer_waits_for_the_slow_request_before_it(cluster, connect):
    client = connect("connector-1")
    client.request("connector.entryHandler.entry", {"uid": "order", "rid": "order"})
    answers = []
    client.request_async("chat.chatHandler.slow", {"seconds": 0.2}, lambda e, b: answers.append("slow"), timeout=10)
    client.request_async("connector.nope", {}, lambda e, b: answers.append(b["code"]), timeout=10)
    wait_until(lambda: len(answers) == 2, 5, message="both answers")
    assert answers == ["slow", 500]


def test_a_bad_body_answer_waits_for_the_slow_request_before_it(cluster):
    from gevent import socket
    from zpomelo.protocol import package
    port = cluster.client_port("connector-1")
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(package.encode(package.HANDSHAKE, b'{"sys":{}}') + package.HANDSHAKE_ACK_PACKAGE)
    slow, echo = b"chat.chatHandler.slow", b"connector.entryHandler.echo"
    sock.sendall(package.encode(package.DATA, bytes([0x00, 0x01, len(slow)]) + slow + b'{"seconds":0.2}')
                 + package.encode(package.DATA, bytes([0x00, 0x02, len(echo)]) + echo + b"{broken"))
    decoder = package.PackageDecoder(1 << 20)
    ids = []
    for _ in rounds(lambda: len(ids) >= 2, seconds=30):     # heartbeats do not count
        data = sock.recv(65536)
        assert data, "closed by the server"
        ids.extend(body[1] for ptype, body in decoder.feed(data) if ptype == package.DATA)
    assert ids == [1, 2]
    sock.close()


def test_junk_on_the_bus_is_dropped_and_pushes_keep_flowing(cluster, connect):
    import msgpack
    client = connect("connector-2")
    client.request("connector.entryHandler.entry", {"uid": "junk", "rid": "junk"})
    chat = cluster["chat-1"]
    for payload in (b"\xc1 not msgpack", msgpack.packb(["push"]), msgpack.packb(["nonsense", 1]),
                    msgpack.packb({"a": 1}), msgpack.packb(["push", "onChat", {}, "not-a-list"])):
        chat.bus.publish_frontend("connector-2", payload)
        chat.rpc_client.notify("connector-2", "_sys", "bus", [payload])  # the fallback path too
    chat.channel_service.push_by_uids("onChat", {"still": "ok"}, [("junk", "connector-2")])
    assert client.wait_push("onChat", 5) == {"still": "ok"}
