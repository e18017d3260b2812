"""bench_push_uid.py's cluster: two connectors hold the players, area-1 pushes to them."""


def configure(app):
    app.configure("test", "connector", lambda: app.set("connectorConfig", {
        "heartbeat": 30, "forwardTimeout": 600}))
