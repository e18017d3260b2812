"""The chat example's configuration, run by every server process of the cluster.

Same shape as Pomelo's chatofpomelo-websocket: connectors compress routes with the dictionary and
encode bodies with pomelo-protobuf; the gate only needs protobuf; chat rooms are spread over the
chat servers by room id, so everyone in a room meets on the same chat server.
"""
import zlib

from zpomelo.errors import HandlerError

CONNECTOR_CONFIG = {"heartbeat": 3, "useDict": True, "useProtobuf": True}
GATE_CONFIG = {"useProtobuf": True}


def room_of(route_param):
    """The room id a chat call is about: the session's "rid", or the RPC's routing key itself."""
    if isinstance(route_param, str):
        return route_param
    rid = route_param.get("rid") if route_param is not None else None
    if not rid:
        raise HandlerError({"code": 500, "error": "enter a room first (connector.entryHandler.enter)"})
    return rid


def route_chat(route_param, msg, app):
    """The chat server that owns the room: crc32 of the room id over the chat servers by id."""
    servers = app.get_servers_by_type("chat")
    if not servers:
        raise HandlerError({"code": 500, "error": "no chat server is up; try again shortly"})
    key = room_of(route_param).encode("utf-8")
    return servers[zlib.crc32(key) % len(servers)].id


def configure(app):
    app.configure("all", "connector",
                  lambda: app.set("connectorConfig", dict(CONNECTOR_CONFIG)))
    app.configure("all", "gate",
                  lambda: app.set("connectorConfig", dict(GATE_CONFIG)))
    app.route("chat", route_chat)
