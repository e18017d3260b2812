"""Configures every server process of this project (run by `zpomelo start`).

Requests for "game.*" go to the game server picked by crc32 of the session's uid (zpomelo's
default route), so one user always lands on the same game server while the servers do not change.
"""


def configure(app):
    app.configure("production|development", "connector", lambda: app.set("connectorConfig", {
        "heartbeat": 10, "useDict": True}))
