"""A single frontend with every connector option on: heartbeats, dictionary, protobuf, hooks."""
import os

from zpomelo import filters


def check_client(client_type, version):
    return version != "0.0.0"


def handshake(app, session, sys, user):
    if user and user.get("token") == "bad":
        raise ValueError("bad token")
    return {"welcome": (user or {}).get("name", "stranger")}


def _ssl_from_env():
    cert, key = os.environ.get("TEST_SSL_CERT"), os.environ.get("TEST_SSL_KEY")
    return {"certfile": cert, "keyfile": key} if cert else None


class RecordingComponent:
    """Writes its lifecycle calls to app setting "component_log" (the tests read it)."""

    def __init__(self, log):
        self.log = log

    def start(self, app):
        self.log.append(("start", app.state))

    def after_start(self, app):
        self.log.append(("after_start", app.state))

    def stop(self, app):
        self.log.append(("stop", app.state))


def configure(app):
    heartbeat = float(os.environ.get("TEST_HEARTBEAT", "1"))
    app.set("connectorConfig", {
        "heartbeat": heartbeat, "useDict": True, "useProtobuf": True,
        "checkClient": check_client, "handshake": handshake,
        "maxBody": 4096, "ssl": _ssl_from_env()})
    app.filter(filters.timeout(0.5))
    app.set("closed_log", [])
    app.set("component_log", [])
    app.load(RecordingComponent(app.get("component_log")))
