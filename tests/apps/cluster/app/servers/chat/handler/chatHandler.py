def echo(app, msg, session):
    return {"server": app.server_id, "msg": msg}


def send(app, msg, session):
    channel = app.channel_service.get_channel(session.get("rid"))
    if channel is None:
        return {"code": 500, "error": "no channel"}
    channel.push("onChat", {"from": session.uid, "content": msg.get("content")})
    return {"code": 200, "server": app.server_id}


def bind(app, msg, session):
    session.bind(msg["uid"])
    session.set("rid", msg.get("rid", "lobby"))
    session.push("rid")
    return {"code": 200, "server": app.server_id}


def set_level(app, msg, session):
    session.set("level", msg["level"])
    session.push("level")
    return {"code": 200}


def get_level(app, msg, session):
    return {"level": session.get("level")}


def ask_area(app, msg, session):
    return {"area": app.rpc.area.areaRemote.ping(session, msg.get("x"))}


def ask_all_chats(app, msg, session):
    return {"all": app.rpc.chat.chatRemote.whoami.to_server("*")}


def ask_chat(app, msg, session):
    return {"one": app.rpc.chat.chatRemote.whoami.to_server(msg["id"])}


def remote_error(app, msg, session):
    try:
        app.rpc.area.areaRemote.explode(session)
    except Exception as exc:
        return {"type": getattr(exc, "remote_type", None), "message": str(exc)}
    return {"type": None}


def remote_timeout(app, msg, session):
    import time
    started = time.monotonic()
    try:
        app.rpc.area.areaRemote.hang(session, timeout=0.3)
    except Exception as exc:
        return {"error": type(exc).__name__, "elapsed": time.monotonic() - started}
    return {"error": None}


def broadcast(app, msg, session):
    app.channel_service.broadcast("connector", "onBroadcast", {"text": msg.get("text")})
    return {"code": 200}


def push_global(app, msg, session):
    app.global_channel_service.get_channel(msg["name"]).push("onGlobal", {"text": msg.get("text")})
    return {"code": 200}


def seq(app, msg, session):
    return {"n": msg["n"]}


def kick_user(app, msg, session):
    return {"kicked": app.backend_session_service.kick_by_uid(session.frontend_id, msg["uid"], "kicked by chat")}


def slow(app, msg, session):
    import gevent
    gevent.sleep(msg.get("seconds", 0.3))
    return {"slept": msg.get("seconds", 0.3), "server": app.server_id}


def flood(app, msg, session):
    """Push `count` messages of `size` bytes to the session's room, yielding now and then."""
    import gevent
    channel = app.channel_service.get_channel(session.get("rid"))
    text = "x" * msg.get("size", 100)
    for n in range(msg["count"]):
        channel.push("onChat", {"n": n, "content": text})
        if n % 1000 == 999:
            gevent.sleep(0)
    return {"pushed": msg["count"], "bus": dict(app.bus.stats)}


def push_self(app, msg, session):
    """Push to the requesting session, then answer: the push must reach the client first."""
    app.channel_service.push_by_uids("onSelf", {"n": msg["n"]}, [(session.uid, session.frontend_id)])
    return {"n": msg["n"]}


def push_many(app, msg, session):
    """Push `count` numbered messages to the requesting session (order check under load)."""
    import gevent
    for n in range(msg["count"]):
        app.channel_service.push_by_uids("onSeq", {"n": n, "tag": msg.get("tag")},
                                         [(session.uid, session.frontend_id)])
        if n % 100 == 99:
            gevent.sleep(0)
    return {"pushed": msg["count"]}
