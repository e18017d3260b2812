def ping(app):
    return "pong from " + app.server_id
