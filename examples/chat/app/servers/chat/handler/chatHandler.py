"""chat.chatHandler.*: messages inside a room (requests arrive on the room's chat server)."""
from zpomelo.errors import HandlerError

EVERYONE = "*"
MAX_CONTENT = 2000  # characters; a longer message is refused with a reason


def send(app, msg, session):
    """{rid, content, from, target} -> onChat {msg, from, target} to the whole room when target is
    "*", else to that one user (the sender's page shows its own private message, as chatofpomelo's
    client does). The sender's name and room come from the session, not from the message."""
    rid = session.get("rid")
    if not rid or not session.uid:
        raise HandlerError({"code": 500, "error": "enter a room first (connector.entryHandler.enter)"})
    content = msg.get("content")
    if not isinstance(content, str) or not content:
        raise HandlerError({"code": 500, "error": "content must be a non-empty string"})
    if len(content) > MAX_CONTENT:
        raise HandlerError({"code": 500, "error": "a message has at most %d characters, this one has %d"
                            % (MAX_CONTENT, len(content))})
    target = msg.get("target") or EVERYONE
    channel = app.channel_service.get_channel(rid)
    if channel is None:
        raise HandlerError({"code": 500, "error": "room %r has nobody in it; enter it again" % rid})

    chat = {"msg": content, "from": session.uid.split("*", 1)[0], "target": target}
    if target == EVERYONE:
        channel.push("onChat", chat)
    else:
        target_uid = "%s*%s" % (target, rid)
        frontend_id = channel.member(target_uid)
        if frontend_id is None:
            raise HandlerError({"code": 500, "error": "%s is not in room %s" % (target, rid)})
        app.channel_service.push_by_uids("onChat", chat, [(target_uid, frontend_id)])
    return {"code": 200}
