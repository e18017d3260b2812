"""app.rpc.chat.chatRemote.*: channel membership, on the chat server that owns the channel."""


def add(app, uid, sid, rid):
    """uid (on frontend sid) joins channel rid -> the number of members after joining."""
    channel = app.channel_service.get_channel(rid, create=True)
    channel.add(uid, sid)
    return channel.member_count


def kick(app, uid, sid, rid):
    """uid leaves channel rid (nothing to answer)."""
    channel = app.channel_service.get_channel(rid)
    if channel is not None:
        channel.leave(uid, sid)
