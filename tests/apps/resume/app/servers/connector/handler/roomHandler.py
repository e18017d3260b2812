"""A room on the frontend itself: login joins it, flood pushes numbered messages to it."""
import gevent


def _event(app, kind, session, detail=None):
    app.get("events").append([kind, session.id, session.uid, detail])


def _closed(app, session, reason):
    _event(app, "closed", session, reason)
    app.channel_service.create_channel("room").leave(session.uid)


def login(app, msg, session):
    session.bind(msg["uid"])
    session.set("color", msg.get("color", "blue"))
    app.channel_service.create_channel("room").add(msg["uid"], app.server_id)
    session.on_drop(lambda s: _event(app, "drop", s))
    session.on_resume(lambda s: _event(app, "resume", s))
    session.on_closed(lambda s, reason: _closed(app, s, reason))
    return {"code": 200, "sid": session.id}


def whoami(app, msg, session):
    room = app.channel_service.get_channel("room")
    return {"uid": session.uid, "sid": session.id, "color": session.get("color"),
            "inRoom": room is not None and session.uid is not None
            and session.uid in room.members()}


def flood(app, msg, session):
    """Push msg["count"] numbered messages to the room; yield now and then like a busy game."""
    room = app.channel_service.get_channel("room")
    for n in range(msg.get("start", 0), msg.get("start", 0) + msg["count"]):
        room.push("onRoom", {"n": n})
        if n % 50 == 49:
            gevent.sleep(msg.get("pause", 0))
    return {"code": 200, "sent": msg["count"]}


def events(app, msg, session):
    return {"events": app.get("events")}


def stats(app, msg, session):
    return {"resume": app.frontend.resume.stats}


def kick(app, msg, session):
    """Kick a uid (as a backend's kick by uid, or a second login elsewhere, would)."""
    return {"kicked": app.frontend.sessions.kick_by_uid(msg["uid"], msg.get("reason", "bye"))}
