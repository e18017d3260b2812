"""connector.entryHandler.*: a user logs in on this connector."""
import logging

logger = logging.getLogger(__name__)


def entry(app, msg, session):
    """{uid} -> {code: 200, uid, game}: binds the uid to this connection and joins the game.

    "game" is the id of the game server that will handle this user's game.* requests.
    """
    uid = msg.get("uid")
    if not uid or not isinstance(uid, str):
        return {"code": 500, "error": "uid must be a non-empty string"}
    if session.uid:
        return {"code": 500, "error": "already logged in as %s" % session.uid}
    session.bind(uid)
    session.on_closed(lambda closed, reason: _leave(app, uid))
    game = app.rpc.game.gameRemote.join(uid, uid, app.server_id)
    return {"code": 200, "uid": uid, "game": game}


def _leave(app, uid):
    try:
        app.rpc.game.gameRemote.leave(uid, uid, app.server_id)
    except Exception as exc:        # the game server may be restarting: nothing to undo then
        logger.warning("%s could not leave the game: %s", uid, exc)
