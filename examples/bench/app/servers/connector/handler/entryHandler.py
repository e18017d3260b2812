"""connector.entryHandler.entry {uid, rid}: bind the uid, remember the rid, join channel rid.

-> {code: 200, uid, rid, count: members after joining}; a uid already bound (here or on this
session) -> {code: 500, error: "duplicate uid"}. When the client leaves, the uid leaves the channel.
"""
import logging

logger = logging.getLogger(__name__)


def entry(app, msg, session):
    uid = str(msg.get("uid") or "u%s" % session.id)
    rid = str(msg.get("rid") or "bench")
    if session.uid is not None or app.session_service.get_by_uid(uid):
        return {"code": 500, "error": "duplicate uid"}
    session.bind(uid)
    session.set("rid", rid)
    session.push("rid")
    session.on_closed(lambda closed, reason: _leave(app, closed))
    count = app.rpc.chat.chatRemote.add(session, uid, app.server_id, rid)
    return {"code": 200, "uid": uid, "rid": rid, "count": count}


def _leave(app, session):
    if session.uid is None:
        return
    try:
        app.rpc.chat.chatRemote.kick.notify(session, session.uid, app.server_id, session.get("rid"))
    except Exception as exc:   # the chat server is gone or shutting down
        logger.debug("%s could not leave its channel: %s", session.uid, exc)
