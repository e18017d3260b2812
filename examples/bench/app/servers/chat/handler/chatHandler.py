"""chat.chatHandler.*: echo, and send to the sender's channel (requests come from the connector)."""


def echo(app, msg, session):
    """The request body, unchanged (client -> connector -> chat -> connector -> client)."""
    return msg


def send(app, msg, session):
    """{content} -> onChat {from: uid, content} to every member of the session's channel."""
    channel = app.channel_service.get_channel(session.get("rid"))
    if channel is None:
        return {"code": 500, "error": "no channel"}
    channel.push("onChat", {"from": session.uid, "content": msg.get("content")})
    return {"code": 200}
