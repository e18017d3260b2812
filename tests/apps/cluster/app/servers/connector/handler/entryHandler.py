from zpomelo import HandlerError


def entry(app, msg, session):
    uid, rid = msg.get("uid"), msg.get("rid", "lobby")
    if not uid:
        raise HandlerError({"code": 500, "error": "uid missing"})
    if app.session_service.get_by_uid(uid):
        return {"code": 500, "error": "duplicate uid"}
    session.bind(uid)
    session.set("rid", rid)
    session.on_closed(lambda s, reason: _left(app, s))
    count = app.rpc.chat.chatRemote.add(session, uid, app.server_id, rid)
    return {"code": 200, "uid": uid, "rid": rid, "count": count, "server": app.server_id}


def _left(app, session):
    app.rpc.chat.chatRemote.kick(session, session.uid, app.server_id, session.get("rid"))


def echo(app, msg, session):
    return {"server": app.server_id, "msg": msg}


def nothing(app, msg, session):
    return None


def fail(app, msg, session):
    raise ValueError("entry failed on purpose")


def hang(app, msg, session):
    import gevent
    gevent.sleep(60)


def kickme(app, msg, session):
    session.kick(msg.get("reason", "bye"))


def whoami(app, msg, session):
    return {"uid": session.uid, "rid": session.get("rid"), "sid": session.id, "server": app.server_id}


def join_global(app, msg, session):
    app.global_channel_service.get_channel(msg["name"]).add(session.uid, app.server_id)
    return {"code": 200}
