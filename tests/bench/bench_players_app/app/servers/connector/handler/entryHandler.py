def login(app, msg, session):
    session.bind(msg["uid"])
    return {"code": 200}
