"""Local routes: answered by the frontend itself."""


def echo(app, msg, session):
    return {"msg": msg}


def bind(app, msg, session):
    session.bind(msg["uid"])
    return {"code": 200}


def push_back(app, msg, session):
    """A push delivered by this frontend to itself (no bus on the way)."""
    app.channel_service.push_by_uids("onBack", msg, [(session.uid, app.server_id)])
    return {"code": 200}
