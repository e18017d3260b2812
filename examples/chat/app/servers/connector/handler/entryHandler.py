"""connector.entryHandler.*: a user enters a chat room through this connector."""
import logging

import gevent

from zpomelo.errors import HandlerError

logger = logging.getLogger(__name__)

MAX_NAME_LENGTH = 20


def enter(app, msg, session):
    """{username, rid} -> {users: [names in the room]}, or {code: 500, error: true} for a taken name.

    The uid is "<username>*<rid>" as in chatofpomelo, so one name can be in several rooms.
    """
    username = _checked_name(msg.get("username"), "username")
    rid = _checked_name(msg.get("rid"), "rid")
    if session.get("rid") is not None:
        raise HandlerError({"code": 500, "error": "this connection already entered room %r; "
                                                  "connect again to enter another" % session.get("rid")})
    uid = "%s*%s" % (username, rid)
    session.set("rid", rid)  # set before the call: a second enter racing this one is refused

    # The client may leave while the chat server adds it: the closed callback is registered first
    # and the user is taken out of the room by whichever of the two sides finishes last.
    presence = {"joined": False, "closed": False}

    def on_closed(closed_session, reason):
        presence["closed"] = True
        if presence["joined"]:
            gevent.spawn(_leave_room, app, uid, rid)

    session.on_closed(on_closed)
    try:
        reply = app.rpc.chat.chatRemote.add(rid, uid, app.server_id, rid)
    except Exception:
        session.set("rid", None)
        raise
    if reply.get("error"):
        session.set("rid", None)  # the name is taken in this room: the client may try another
        return {"code": 500, "error": True}
    presence["joined"] = True
    if presence["closed"]:
        _leave_room(app, uid, rid)
        return {}
    session.bind(uid)
    session.push("rid")
    return {"users": reply["users"]}


def _checked_name(value, field):
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_LENGTH or "*" in value:
        raise HandlerError({"code": 500, "error": "%s must be 1 to %d characters, without '*'"
                                                  % (field, MAX_NAME_LENGTH)})
    return value


def _leave_room(app, uid, rid):
    try:
        app.rpc.chat.chatRemote.kick(rid, uid, app.server_id, rid)
    except Exception as exc:
        logger.warning("%s could not leave room %s: %s", uid, rid, exc)
