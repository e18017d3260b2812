"""What a test asks a backend to do: push by uid, look players up, global and local channels."""
from zpomelo.errors import PlayerOffline


def push(app, msg, session):
    return {"offline": app.push_to_uids(msg["uids"], msg.get("route", "onPush"), msg.get("body", {})),
            "seen": sorted(app.get("seen_frontends")), "server": app.server_id}


def push_one(app, msg, session):
    return {"online": app.push_to_uid(msg["uid"], msg.get("route", "onPush"), msg.get("body", {}))}


def sessions_of(app, msg, session):
    """Where the directory says uid is, and what each frontend itself holds."""
    uid = msg["uid"]
    directory = [[s.frontend_id, s.id] for s in app.backend_session_service.get_by_uid(uid)]
    held = {}
    for record in app.get_servers_by_type("connector"):
        held[record.id] = [s.id for s in app.backend_session_service.get_by_uid(record.id, uid)]
    return {"directory": directory, "held": held}


def kick_uid(app, msg, session):
    return {"kicked": app.backend_session_service.kick_uid(msg["uid"], msg.get("reason", "bye"))}


def gadd(app, msg, session):
    try:
        return {"added": app.global_channel_service.get_channel(msg["name"]).add(msg["uid"])}
    except PlayerOffline as exc:
        return {"offline": exc.uids}


def gadd_on(app, msg, session):
    channel = app.global_channel_service.get_channel(msg["name"])
    return {"added": channel.add(msg["uid"], msg["frontend"])}


def gmembers(app, msg, session):
    members = app.global_channel_service.get_channel(msg["name"]).members()
    return {"members": sorted(members), "unreachable": members.unreachable}


def gpush(app, msg, session):
    app.global_channel_service.get_channel(msg["name"]).push("onGlobal", {"text": msg["text"]})
    return {"code": 200}


def cadd(app, msg, session):
    channel = app.channel_service.get_channel(msg["name"], create=True)
    try:
        return {"added": channel.add(msg["uid"]), "frontend": channel.member(msg["uid"])}
    except PlayerOffline as exc:
        return {"offline": exc.uids}


def cpush(app, msg, session):
    channel = app.channel_service.get_channel(msg["name"])
    return {"sent": channel.push(msg.get("route", "onChannel"), msg.get("body", {}))}


def stats(app, msg, session):
    return {"players": dict(app.players.stats)}
