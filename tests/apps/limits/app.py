"""Rate limits and global filters on the frontend; the backend counts what reaches it."""

LIMITS = {
    "heartbeat": 5,
    "rateLimitRequests": 50,          # requests/s per connection
    "rateLimitRequestsBurst": 50,
    "rateLimitBytes": 20000,          # bytes/s per connection; a bigger message never passes
    "rateLimitKickAfter": 100,        # refusals within 10 s that kick the connection
}


def refuse_forbidden(route, msg, session):
    """Refuses any request whose body says forbidden; a body asking for it makes the filter fail."""
    if msg.get("explode"):
        raise RuntimeError("global filter broke on purpose")
    if msg.get("forbidden"):
        return {"code": 403, "error": "refused by the frontend's global filter"}
    return None


class Answers:
    """A global after filter counting the answers it saw, by route."""

    def __init__(self):
        self.seen = {}

    def after(self, route, msg, session, response, error):
        if msg.get("explode_after"):
            raise RuntimeError("global after filter broke on purpose")
        self.seen[route] = self.seen.get(route, 0) + 1


ANSWERS = Answers()


def configure(app):
    app.configure("test", "connector", lambda: app.set("connectorConfig", dict(LIMITS)))
    app.configure("test", "connector", lambda: app.global_before(refuse_forbidden))
    app.configure("test", "connector", lambda: app.global_after(ANSWERS))
    app.set("answersSeen", ANSWERS)
