"""connector.entryHandler.login: bind the uid and create (or refresh) the player's document."""


def login(app, msg, session):
    uid, name = msg.get("uid"), msg.get("name") or msg.get("uid")
    if not uid or not isinstance(uid, str):
        return {"code": 500, "error": "uid must be a non-empty string"}
    session.bind(uid)
    player = app.rpc.player.playerRemote.login(uid, uid, name, app.server_id)
    return {"code": 200, "player": player}
