def login(app, msg, session):
    session.bind(msg["uid"])
    return {"code": 200, "server": app.server_id, "sid": session.id}


def whoami(app, msg, session):
    return {"uid": session.uid, "sid": session.id, "server": app.server_id}
