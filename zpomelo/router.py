"""Route parsing and the choice of a server for a routing key (broker-less: the caller picks)."""
import zlib

from zpomelo.errors import RouteError, ServerGone

_parsed = {}


def parse_route(route):
    """``"chat.chatHandler.send"`` -> ``("chat", "chatHandler", "send")``; cached per route."""
    parts = _parsed.get(route)
    if parts is not None:
        return parts
    if not isinstance(route, str):
        raise RouteError("route must be a string, got %r" % (route,))
    parts = tuple(route.split("."))
    if len(parts) != 3 or not all(parts):
        raise RouteError("route %r must have three dot-separated parts: serverType.handler.method" % route)
    if len(_parsed) < 10000:  # bounded: clients may send any garbage route
        _parsed[route] = parts
    return parts


def crc32_key(key):
    if key is None:
        key = ""
    if not isinstance(key, (bytes, bytearray)):
        key = str(key).encode("utf-8")
    return zlib.crc32(key) & 0xFFFFFFFF


def pick_by_key(servers, key):
    """crc32(key) modulo the live servers of one type, in their stable (id-sorted) order."""
    if not servers:
        raise ServerGone("no server of this type is up")
    return servers[crc32_key(key) % len(servers)].id


def default_route_key(session, explicit_key=None):
    if explicit_key is not None:
        return explicit_key
    if session is not None:
        uid = session.uid
        return uid if uid is not None else session.id
    return ""
