"""The test cluster's app: chat requests are routed by the session's room (rid)."""
import zlib

from zpomelo import filters


def route_chat(param, msg, app):
    servers = app.get_servers_by_type("chat")
    if hasattr(param, "get"):
        key = param.get("rid") or param.uid or str(param.id)
    else:
        key = param
    return servers[(zlib.crc32(str(key).encode()) & 0xFFFFFFFF) % len(servers)].id


def configure(app):
    app.configure("test", "connector", lambda: app.set("connectorConfig", {
        "heartbeat": 1, "useDict": True}))
    app.configure("test", lambda: app.route("chat", route_chat))
    app.configure("test", lambda: app.filter(filters.timeout(1.0)))
