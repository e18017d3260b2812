"""The bench app: the same servers, routes, bodies and settings as the pinus reference app
(pinus 1.7.4, outside this repository: see README.md).

connector-server-1 (frontend, heartbeat 10 s, route dictionary on, JSON bodies) and
chat-server-1 (backend); requests for chat.* go to the chat server picked by crc32 of the
session's rid, as pinus' routeUtil.chat does. The environment "twofrontends" adds
connector-server-2 (client port 3011) for the channel-push benchmark on two frontends.

Environment variables (read by every server process, like pinus-app's BENCH_HEARTBEAT):
  BENCH_HEARTBEAT    heartbeat seconds (default 10)
  BENCH_CLIENT_PORT  client port of the first frontend by id (default: servers.json, 3010);
                     the next frontends get the following ports
"""
import dataclasses
import os
import zlib

from zpomelo.errors import HandlerError

_heartbeat = float(os.environ.get("BENCH_HEARTBEAT", 10))
HEARTBEAT_SEC = int(_heartbeat) if _heartbeat.is_integer() else _heartbeat


def route_chat(param, msg, app):
    """crc32 of the session's rid (or of the key itself) over the chat servers sorted by id."""
    servers = app.get_servers_by_type("chat")
    if not servers:
        raise HandlerError({"code": 500, "error": "can not find chat servers."})
    rid = param.get("rid") if hasattr(param, "get") else param
    key = str(rid or "").encode("utf-8")
    return servers[zlib.crc32(key) % len(servers)].id


def _override_client_port(app):
    base = os.environ.get("BENCH_CLIENT_PORT")
    if not base or not app.is_frontend:
        return
    frontends = sorted(r.id for r in _frontend_records(app))
    port = int(base) + frontends.index(app.server_id)
    app.current_server = dataclasses.replace(app.current_server, client_port=port)


def _frontend_records(app):
    from zpomelo.config import load_servers
    return [r for r in load_servers(app.base_dir, app.env) if r.frontend]


def configure(app):
    app.configure("all", "connector", lambda: app.set("connectorConfig", {
        "heartbeat": HEARTBEAT_SEC,   # seconds; a client silent for 2x this is dropped
        "useDict": True,              # route dictionary in the handshake
        "useProtobuf": False,         # JSON bodies
    }))
    app.route("chat", route_chat)
    _override_client_port(app)
