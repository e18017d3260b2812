"""Forwarded routes: the request crosses RPC to this backend and the answer comes back."""
_noted = []


def echo(app, msg, session):
    return {"msg": msg}


def note(app, msg, session):
    """A notify target: keeps the body for `last`."""
    _noted[:] = [msg]


def last(app, msg, session):
    return {"noted": _noted[0] if _noted else None}


def push_back(app, msg, session):
    """A push from a backend: it crosses the bus to the session's frontend."""
    app.channel_service.push_by_uids("onBack", msg, [(session.uid, session.frontend_id)])
    return {"code": 200}
