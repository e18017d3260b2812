def ping(app, msg, session):
    return {"server": app.server_id}
