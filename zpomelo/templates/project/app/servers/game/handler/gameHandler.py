"""game.gameHandler.*: the game itself (runs on the game server chosen for the user)."""


def hello(app, msg, session):
    """{text} -> {code: 200, reply, server}; also pushes "onHello" to everyone in the game."""
    text = str(msg.get("text", ""))
    channel = app.channel_service.get_channel("world", create=True)
    channel.push("onHello", {"from": session.uid, "text": text, "server": app.server_id})
    return {"code": 200, "reply": "hello %s: %s" % (session.uid, text), "server": app.server_id}
