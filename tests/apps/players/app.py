"""The players test cluster: three connectors, two area backends chosen by the request itself.

A request to area names the server in its body ({"area": "area-2"}), so a test knows exactly
which backend ran it and which frontends that backend has seen (``seen_frontends``).
"""


def route_area(param, msg, app):
    if msg and msg.get("area"):
        return msg["area"]
    return app.get_servers_by_type("area")[0].id


class SeenFrontends:
    """Remembers the frontend of every forwarded session this backend ran a request for."""

    def __init__(self, app):
        self.app = app
        app.set("seen_frontends", set())

    def before(self, route, msg, session):
        self.app.get("seen_frontends").add(session.frontend_id)


def configure(app):
    app.set("rpcTimeout", 2)
    app.configure("test", "connector", lambda: app.set("connectorConfig", {
        "heartbeat": 1, "forwardTimeout": 15}))  # inner calls time out first (rpcTimeout 2)
    app.configure("test", lambda: app.route("area", route_area))
    app.configure("test", "area", lambda: app.before(SeenFrontends(app)))
