"""app.rpc.game.gameRemote.*: called by connectors; routed by the uid like the user's requests."""


def join(app, uid, sid):
    """Puts uid (connected to frontend sid) into this server's "world" channel -> this server id."""
    app.channel_service.get_channel("world", create=True).add(uid, sid)
    return app.server_id


def leave(app, uid, sid):
    channel = app.channel_service.get_channel("world")
    return bool(channel and channel.leave(uid, sid))
