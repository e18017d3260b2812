def whoami(app, msg, session):
    return {"uid": session.uid, "server": app.server_id}
