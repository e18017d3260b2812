"""One frontend whose handler runs locally (no backend): the connector's own request path.

Same connector settings as examples/bench (heartbeat 10 s, route dictionary, JSON bodies).
"""


def configure(app):
    app.set("connectorConfig", {"heartbeat": 10, "useDict": True, "useProtobuf": False})
