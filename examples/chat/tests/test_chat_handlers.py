"""The chat handlers and remotes called as plain functions, with zpomelo's FakeApp: no sockets,
every remote call answered by the test and every push recorded."""
from zpomelo.testing import FakeSession, wait_until


def test_enter_binds_the_user_and_returns_the_room(fake_app, fake_session):
    app = fake_app("connector-server-1")
    app.stub_rpc("chat.chatRemote.add", {"users": ["bob", "ann"]})

    reply = app.request("connector.entryHandler.enter", {"username": "ann", "rid": "lobby"}, fake_session)

    assert reply == {"users": ["bob", "ann"]}
    assert fake_session.uid == "ann*lobby"
    assert fake_session.pushed == {"rid": "lobby"}             # the chat server sees the room
    assert app.calls_to("chat.chatRemote.add") == [["ann*lobby", "connector-server-1", "lobby"]]


def test_a_name_taken_in_the_room_is_refused_and_may_try_again(fake_app, fake_session):
    app = fake_app("connector-server-1")
    app.stub_rpc("chat.chatRemote.add", {"code": 500, "error": True})
    enter = app.handler("connector.entryHandler.enter")

    assert enter(app, {"username": "ann", "rid": "lobby"}, fake_session) == {"code": 500, "error": True}
    assert fake_session.uid is None and fake_session.get("rid") is None


def test_bad_names_are_refused_before_any_remote_call(fake_app, fake_session):
    app = fake_app("connector-server-1")
    reply = app.request("connector.entryHandler.enter", {"username": "a*b", "rid": "lobby"}, fake_session)
    assert reply["code"] == 500 and "without '*'" in reply["error"]
    assert app.rpc_calls == []


def test_leaving_takes_the_user_out_of_the_room(fake_app, fake_session):
    app = fake_app("connector-server-1")
    app.stub_rpc("chat.chatRemote.add", {"users": ["ann"]})
    app.stub_rpc("chat.chatRemote.kick", True)
    app.request("connector.entryHandler.enter", {"username": "ann", "rid": "lobby"}, fake_session)

    fake_session.close("client closed")

    wait_until(lambda: app.calls_to("chat.chatRemote.kick"), timeout=5, message="the kick")
    assert app.calls_to("chat.chatRemote.kick") == [["ann*lobby", "connector-server-1", "lobby"]]


def test_the_room_hears_who_comes_and_goes(fake_app):
    chat = fake_app("chat-server-1")
    assert chat.call_remote("chat.chatRemote.add", "ann*lobby", "connector-server-1", "lobby") == {"users": ["ann"]}
    assert chat.call_remote("chat.chatRemote.add", "bob*lobby", "connector-server-2", "lobby") == {
        "users": ["ann", "bob"]}
    assert chat.call_remote("chat.chatRemote.add", "bob*lobby", "connector-server-1", "lobby") == {
        "code": 500, "error": True}
    assert chat.call_remote("chat.chatRemote.kick", "ann*lobby", "connector-server-1", "lobby") is True

    assert chat.pushes_to("ann*lobby") == [("onAdd", {"user": "bob"})]
    assert chat.pushes_to("bob*lobby") == [("onLeave", {"user": "ann"})]


def test_send_reaches_the_room_or_one_user(fake_app):
    chat = fake_app("chat-server-1")
    for name, connector in [("ann", "connector-server-1"), ("bob", "connector-server-2"), ("cy", "connector-server-2")]:
        chat.call_remote("chat.chatRemote.add", name + "*lobby", connector, "lobby")
    chat.pushes_sent.clear()
    ann = FakeSession(uid="ann*lobby", frontend_id="connector-server-1", settings={"rid": "lobby"})

    assert chat.request("chat.chatHandler.send", {"content": "hi", "target": "*"}, ann) == {"code": 200}
    assert chat.request("chat.chatHandler.send", {"content": "psst", "target": "bob"}, ann) == {"code": 200}

    hi = ("onChat", {"msg": "hi", "from": "ann", "target": "*"})
    assert chat.pushes_to("cy*lobby") == [hi]
    assert chat.pushes_to("bob*lobby") == [hi, ("onChat", {"msg": "psst", "from": "ann", "target": "bob"})]


def test_send_explains_what_is_wrong(fake_app):
    chat = fake_app("chat-server-1")
    nobody = FakeSession()
    assert "enter a room first" in chat.request("chat.chatHandler.send", {"content": "hi"}, nobody)["error"]
    ann = FakeSession(uid="ann*lobby", settings={"rid": "lobby"})
    too_long = chat.request("chat.chatHandler.send", {"content": "x" * 2001}, ann)
    assert too_long == {"code": 500, "error": "a message has at most 2000 characters, this one has 2001"}


def test_the_gate_points_at_a_connector(fake_app, fake_session):
    gate = fake_app("gate-server-1")
    reply = gate.request("gate.gateHandler.queryEntry", {"uid": "ann"}, fake_session)
    assert reply["code"] == 200 and reply["host"] == "127.0.0.1"
    assert reply["port"] in [s.client_port for s in gate.get_servers_by_type("connector")]
    assert gate.request("gate.gateHandler.queryEntry", {}, fake_session) == {"code": 500}
