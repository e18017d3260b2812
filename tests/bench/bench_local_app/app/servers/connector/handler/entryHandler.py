def echo(app, msg, session):
    """The request body, answered by the frontend itself."""
    return msg
