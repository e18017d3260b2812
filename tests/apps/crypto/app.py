def configure(app):
    app.set("connectorConfig", {"heartbeat": 5, "useCrypto": True})
