def echo(app, msg, session):
    return msg


def proto(app, msg, session):
    return {"greeting": "hello " + msg["name"], "level": msg["level"] - sum(msg.get("scores", []))}


def login(app, msg, session):
    session.bind(msg["uid"])
    session.on_closed(lambda s, reason: app.get("closed_log").append((s.uid, reason)))
    return {"code": 200, "uid": msg["uid"]}


def push_me(app, msg, session):
    app.channel_service.push_by_uids(msg.get("route", "onPush"), msg.get("body", {}),
                                     [(session.uid, app.server_id)])
    return {"code": 200}


def note(app, msg, session):
    """A notify: answers nothing, pushes onNotified so the test can see it ran."""
    app.channel_service.push_by_uids("onNotified", {"got": msg}, [(session.uid, app.server_id)])


def kick_me(app, msg, session):
    session.kick(msg.get("reason", "bye"))
    return {"code": 200}


def boom(app, msg, session):
    raise RuntimeError("boom")


def hang(app, msg, session):
    import gevent
    gevent.sleep(30)


def slow(app, msg, session):
    import os
    import gevent
    if os.environ.get("LIFECYCLE_LOG"):
        with open(os.environ["LIFECYCLE_LOG"], "a") as f:
            f.write("slow_started %s\n" % app.server_id)
    gevent.sleep(msg.get("seconds", 0.3))
    return {"slept": msg.get("seconds", 0.3)}
