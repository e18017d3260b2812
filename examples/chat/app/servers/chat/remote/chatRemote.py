"""app.rpc.chat.chatRemote.*: room membership, on the chat server that owns the room.

Rooms are channels named by room id; their members are uids "<username>*<rid>" together with the
connector (frontend) each user is on.
"""


def add(app, uid, sid, rid):
    """Puts uid (on connector sid) into room rid -> {users: [names]}; {code: 500, error: true}
    when the name is already in the room. The room's members get onAdd {user}."""
    channel = app.channel_service.get_channel(rid, create=True)
    if channel.member(uid) is not None:
        return {"code": 500, "error": True}
    channel.push("onAdd", {"user": _username(uid)})
    channel.add(uid, sid)
    return {"users": [_username(member) for member in channel.members()]}


def kick(app, uid, sid, rid):
    """Takes uid out of room rid and tells the others with onLeave {user}; True if it was there."""
    channel = app.channel_service.get_channel(rid)
    if channel is None or not channel.leave(uid, sid):
        return False
    if channel.member_count == 0:
        app.channel_service.destroy_channel(rid)
    else:
        channel.push("onLeave", {"user": _username(uid)})
    return True


def _username(uid):
    return uid.split("*", 1)[0]
