class AreaFull(Exception):
    code = 503


def ping(app, x):
    return {"server": app.server_id, "x": x}


def explode(app):
    raise AreaFull("the area is full")


def hang(app):
    import gevent
    gevent.sleep(60)


def global_push(app, name, text):
    app.global_channel_service.get_channel(name).push("onGlobal", {"text": text})
    return True
