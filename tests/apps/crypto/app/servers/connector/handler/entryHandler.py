def echo(app, msg, session):
    return msg
