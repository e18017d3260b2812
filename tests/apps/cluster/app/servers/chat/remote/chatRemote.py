def add(app, uid, frontend_id, rid):
    channel = app.channel_service.get_channel(rid, create=True)
    channel.add(uid, frontend_id)
    return channel.member_count


def kick(app, uid, frontend_id, rid):
    channel = app.channel_service.get_channel(rid)
    if channel is not None:
        channel.leave(uid, frontend_id)


def members(app, rid):
    channel = app.channel_service.get_channel(rid)
    return channel.members() if channel else []


def whoami(app):
    return app.server_id
