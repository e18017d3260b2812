"""FakeApp and FakeSession: game code called as plain functions, with what it did recorded."""
import os

import pytest

from zpomelo.errors import ConfigError, RpcError, RpcTimeout, ServerGone
from zpomelo.session import SessionError
from zpomelo.testing import FakeApp, FakeSession, UnexpectedCall, wait_until

pytestmark = pytest.mark.timeout(30)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHAT = os.path.join(ROOT, "examples", "chat")
CLUSTER_APP = os.path.join(ROOT, "tests", "apps", "cluster")


def bare_chat():
    return FakeApp(server_type="chat", servers=[
        {"id": "connector-1", "serverType": "connector", "host": "127.0.0.1", "port": 0,
         "frontend": True, "clientPort": 0},
        {"id": "connector-2", "serverType": "connector", "host": "127.0.0.1", "port": 0,
         "frontend": True, "clientPort": 0}])


def test_a_project_fake_app_has_the_projects_servers_settings_and_routes():
    app = FakeApp(CHAT, "connector-server-2")
    assert (app.server_id, app.server_type, app.is_frontend) == ("connector-server-2", "connector", True)
    assert app.get("connectorConfig")["useProtobuf"] is True        # app.py's configure ran
    assert [s.id for s in app.get_servers_by_type("chat")] == ["chat-server-1", "chat-server-2"]
    app.stub_rpc("chat.chatRemote.add", {"users": []})
    app.rpc.chat.chatRemote.add("room-7", "u", "connector-server-2", "room-7")
    # the chat example's own route function picked the server (crc32 of the room id)
    import zlib
    expected = ["chat-server-1", "chat-server-2"][zlib.crc32(b"room-7") % 2]
    assert app.rpc_calls[0].server_id == expected


def test_routes_files_of_the_project_route_as_in_a_server():
    bank = os.path.join(ROOT, "tests", "db", "apps", "bank")
    app = FakeApp(bank, "connector-1")
    app.stub_rpc("bank.bankRemote.balance", 0)
    import sys
    from zpomelo.router import crc32_key
    seen = sys.modules["zpomelo_app_routes_bank"].SEEN      # the routes file records its calls
    before = len(seen)
    for account in ["acct-1", "acct-2", "acct-3", "acct-4"]:
        app.rpc.bank.bankRemote.balance(account, account)
        assert app.rpc_calls[-1].server_id == ["bank-1", "bank-2"][crc32_key(account) % 2]
    assert seen[before:] == ["bankRemote.balance"] * 4


def test_an_unknown_server_id_names_the_servers_there_are():
    with pytest.raises(ConfigError, match="connector-server-1, connector-server-2"):
        FakeApp(CHAT, "connector-9")


def test_rpc_answers_come_from_the_stubs_and_every_call_is_recorded():
    app = FakeApp(CLUSTER_APP, "connector-1")
    seen = []
    app.stub_rpc("chat.chatRemote.add", lambda *args: seen.append(args) or {"ok": len(seen)})
    assert app.rpc.chat.chatRemote.add("room", "alice", "connector-1") == {"ok": 1}
    assert app.rpc.chat.chatRemote.add.to_server("chat-2", "bob", "connector-1") == {"ok": 2}
    assert seen == [("alice", "connector-1"), ("bob", "connector-1")]
    assert app.calls_to("chat.chatRemote.add") == [["alice", "connector-1"], ["bob", "connector-1"]]
    assert app.rpc_calls[1].server_id == "chat-2" and app.rpc_calls[1].kind == "call"


def test_a_call_to_every_server_of_a_type_is_answered_per_server():
    app = FakeApp(CLUSTER_APP, "connector-1")
    app.stub_rpc("chat.chatRemote.count", 3)
    assert app.rpc.chat.chatRemote.count.to_server("*") == {"chat-1": 3, "chat-2": 3}


def test_a_stubbed_exception_arrives_as_the_remotes_failure():
    app = bare_chat()
    app.stub_rpc("connector.roomRemote.join", KeyError("room-9"))
    with pytest.raises(RpcError) as failure:
        app.rpc.connector.roomRemote.join.to_server("connector-1", "room-9")
    assert failure.value.remote_type == "KeyError" and failure.value.server_id == "connector-1"
    app.stub_rpc("connector.roomRemote.join", RpcTimeout("no answer in 10 s"))
    with pytest.raises(RpcTimeout):
        app.rpc.connector.roomRemote.join.to_server("connector-1", "room-9")
    app.stub_rpc("connector.roomRemote.join", ValueError)
    with pytest.raises(RpcError, match="ValueError"):
        app.rpc.connector.roomRemote.join.to_server("connector-1")


def test_a_call_without_an_answer_says_how_to_give_one_and_is_kept():
    app = FakeApp(CHAT, "connector-server-1")
    app.stub_rpc("chat.chatRemote.add", {"users": ["ann"]})
    with pytest.raises(UnexpectedCall) as failure:
        app.rpc.chat.chatRemote.kick("r1", "ann*r1", "connector-server-1", "r1")
    text = str(failure.value)
    assert "chat.chatRemote.kick" in text and "app.stub_rpc('chat.chatRemote.kick'" in text
    assert "answers set: chat.chatRemote.add" in text
    assert app.unexpected == [failure.value]


def test_a_handler_swallowing_the_unexpected_call_still_leaves_a_trace():
    app = FakeApp(CHAT, "connector-server-1")
    app.stub_rpc("chat.chatRemote.add", {"users": ["ann"]})
    session = FakeSession()
    app.request("connector.entryHandler.enter", {"username": "ann", "rid": "r1"}, session)
    session.close()                       # the handler's on_closed leaves the room in a greenlet
    wait_until(lambda: app.unexpected, timeout=5, message="the leave call")
    assert [str(e).split(" called ")[1].split("(")[0] for e in app.unexpected] == ["chat.chatRemote.kick"]


def test_a_notify_is_recorded_and_needs_no_answer():
    app = FakeApp(CLUSTER_APP, "connector-1")
    app.rpc.chat.chatRemote.touch.notify("room", "alice")
    assert app.rpc_calls[0].kind == "notify" and app.rpc_calls[0].args == ["alice"]
    assert app.unexpected == []


def test_values_the_wire_cannot_carry_fail_as_they_would_in_a_cluster():
    app = bare_chat()
    app.stub_rpc("connector.roomRemote.join", True)
    with pytest.raises(TypeError):
        app.rpc.connector.roomRemote.join.to_server("connector-1", {"a", "set"})
    assert app.rpc.connector.roomRemote.join.to_server("connector-1", ("a", "tuple")) is True
    assert app.rpc_calls[-1].args == [["a", "tuple"]]      # a tuple arrives as a list


def test_a_call_to_a_server_not_in_the_cluster_is_server_gone():
    with pytest.raises(ServerGone, match="connector-9"):
        bare_chat().rpc.connector.roomRemote.join.to_server("connector-9")


def test_channel_pushes_are_recorded_per_frontend_with_their_uids():
    app = bare_chat()
    room = app.channel_service.create_channel("room")
    room.add("ann", "connector-1")
    room.add("bob", "connector-2")
    room.add("cid", "connector-2")
    assert room.push("onChat", {"msg": "hi"}, exclude=["cid"]) == 2
    assert sorted((p.frontend_id, tuple(p.uids)) for p in app.pushes_sent) == [
        ("connector-1", ("ann",)), ("connector-2", ("bob",))]
    assert app.pushes_to("bob") == [("onChat", {"msg": "hi"})]
    assert app.pushes_to("cid") == []
    assert app.channel_service.broadcast("connector", "onNews", {"n": 1}) == 2
    assert [(p.frontend_id, p.route, p.uids, p.kind) for p in app.pushes_sent[-2:]] == [
        ("connector-1", "onNews", None, "broadcast"), ("connector-2", "onNews", None, "broadcast")]
    assert app.pushes_to("cid") == []


def test_global_channels_keep_members_per_frontend_and_record_pushes():
    app = bare_chat()
    world = app.global_channel_service.get_channel("world")
    world.add("ann", "connector-1")
    world.add("bob", "connector-2")
    assert sorted(world.members()) == ["ann", "bob"]
    world.push("onWorld", {"x": 1}, exclude=["bob"])
    assert [(p.frontend_id, p.uids, p.kind) for p in app.pushes_sent] == [("connector-1", ["ann"], "global")]
    assert world.leave("ann", "connector-1") is True
    assert world.members() == ["bob"]


def test_request_runs_the_filters_and_error_shaping_of_a_real_server():
    app = FakeApp(CHAT, "chat-server-1")
    session = FakeSession(uid="ann*r1", settings={"rid": "r1"})
    assert app.request("chat.chatHandler.send", {"content": "hi"}, session) == {
        "code": 500, "error": "room 'r1' has nobody in it; enter it again"}
    app.before(lambda route, msg, session: {"code": 403, "error": "muted"})
    assert app.request("chat.chatHandler.send", {"content": "hi"}, session) == {"code": 403, "error": "muted"}


def test_request_and_remote_name_what_is_missing():
    app = FakeApp(CHAT, "chat-server-1")
    with pytest.raises(ConfigError, match="no handler chat.chatHandler.nope"):
        app.request("chat.chatHandler.nope", {}, FakeSession())
    with pytest.raises(ValueError, match="<serverType>.<file>.<function>"):
        app.remote("chatRemote.add")
    with pytest.raises(ConfigError, match=r"served by connector servers \(connector-server-1, "
                                          r"connector-server-2\), and this FakeApp is chat-server-1"):
        app.request("connector.entryHandler.enter", {}, FakeSession())
    with pytest.raises(ConfigError, match="no project"):
        bare_chat().handler("chat.chatHandler.send")
    with pytest.raises(ValueError, match="<serverType>.<remote>.<method>"):
        app.stub_rpc("chatRemote.add", 1)


def test_fake_session_keeps_the_real_sessions_rules_and_records_changes():
    session = FakeSession(sid=7, frontend_id="connector-2")
    session.set("rid", "r1")
    session.set({"level": 3})
    session.bind("ann")
    session.bind("ann")                            # the same uid again is fine
    with pytest.raises(SessionError, match="already bound"):
        session.bind("bob")
    with pytest.raises(SessionError, match="not bound to uid 'bob'"):
        session.unbind("bob")
    with pytest.raises(SessionError, match="empty uid"):
        FakeSession().bind("")
    session.push("rid")
    session.kick("bye")
    assert session.log == [("set", "rid", "r1"), ("set", "level", 3), ("bind", "ann"), ("bind", "ann"),
                           ("push", ("rid",)), ("kick", "bye")]
    assert session.pushed == {"rid": "r1"} and session.kicked == "bye"
    assert session.snapshot() == [7, "connector-2", "ann", {"rid": "r1", "level": 3}]


def test_fake_session_close_runs_each_callback_once():
    session = FakeSession()
    closed = []
    session.on_closed(lambda s, reason: closed.append((s.id, reason)))
    session.close("timeout")
    session.close("again")
    assert closed == [(1, "timeout")]


def test_a_fake_app_has_everything_an_application_has():
    from zpomelo.application import Application
    real = Application(CLUSTER_APP, "test", "connector-1")
    fake = FakeApp(CLUSTER_APP, "connector-1")
    assert set(vars(real)) <= set(vars(fake))
    with pytest.raises(TypeError, match="no sockets to start"):
        fake.start()


def test_held_pushes_go_to_the_hook_as_in_a_server():
    app = bare_chat()
    room = app.channel_service.create_channel("room")
    room.add("ann", "connector-1")
    held = []
    with app.pushes.hold(lambda *push: held.append(push)):
        room.push("onChat", {"msg": "later"})
    assert app.pushes_sent == [] and len(held) == 1
    app.pushes.deliver(*held[0])
    assert app.pushes_to("ann") == [("onChat", {"msg": "later"})]


def test_push_to_uid_finds_players_the_test_set_online():
    app = bare_chat()
    app.set_online("ann", "connector-2")
    assert app.push_to_uids(["ann", "bob"], "onMail", {"n": 1}) == ["bob"]
    assert app.pushes_to("ann") == [("onMail", {"n": 1})]
    assert app.pushes_sent[0].frontend_id == "connector-2"
    room = app.channel_service.get_channel("room", create=True)
    room.add("ann")
    assert room.member("ann") == "connector-2"
    app.set_online("ann", None)
    assert app.push_to_uid("ann", "onMail", {}) is False


def test_a_fake_session_runs_drop_resume_and_closed_hooks_as_a_resuming_client_would():
    session = FakeSession(uid="ann")
    seen = []
    session.on_drop(lambda s: seen.append(("drop", s.detached)))
    session.on_resume(lambda s: seen.append(("resume", s.detached)))
    session.on_closed(lambda s, reason: seen.append(("closed", reason)))
    session.drop()
    session.resume()
    session.close("resume window expired")
    assert seen == [("drop", True), ("resume", False), ("closed", "resume window expired")]
