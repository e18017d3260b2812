def entry(app, msg, session):
    session.bind(msg["uid"])
    return {"code": 200}


def echo(app, msg, session):
    return {"code": 200, "n": msg.get("n")}


def answers_seen(app, msg, session):
    return {"seen": dict(app.get("answersSeen").seen),
            "filters": dict(app.global_filters.stats),
            "rateLimited": dict(app.connector.rate_limited)}
