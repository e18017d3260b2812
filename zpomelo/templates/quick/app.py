"""quick: players, areas and teams kept in app.db; every area/player request is a transaction.

Routing (app/routes): area requests go to the server of the area (crc32 of its id), player
requests to the server of the player, so an entity's locks and cached documents stay on one server.
"""


def configure(app):
    app.configure("development|test", "connector", lambda: app.set("connectorConfig", {
        "heartbeat": 10, "useDict": True}))
