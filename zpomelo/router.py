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


class Router:
    """Chooses the server of a type for a route parameter: the game's route function for that
    type (``app.route(type, fn)``) or crc32 of the key over the live servers of the type."""

    def __init__(self, app):
        self._app = app
        self._route_fns = {}   # server type -> fn(route_param, msg, app) -> server id

    def set_route(self, server_type, fn):
        self._route_fns[server_type] = fn

    def route_functions(self):
        """A copy of {server type: route function}."""
        return dict(self._route_fns)

    def replace_routes(self, route_fns):
        """Route with ``route_fns`` from the next pick on (zpomelo.reload), in one assignment."""
        self._route_fns = route_fns

    def pick(self, server_type, route_param, msg=None, route=None):
        """The server id for ``route_param`` (a session for forwarded requests, else a key).

        ``route``: the client route, or ``remote.method`` for RPC; given to route functions
        marked ``fn.with_route = True`` as a fourth argument (the app/routes convention)."""
        fn = self._route_fns.get(server_type)
        if fn is not None:
            if getattr(fn, "with_route", False):
                server_id = fn(route_param, msg, self._app, route)
            else:
                server_id = fn(route_param, msg, self._app)
            if server_id is None:
                raise ServerGone("the route function for %s chose no server" % server_type)
            return server_id
        servers = self._app.membership.by_type(server_type)
        if not servers:
            raise ServerGone("no %s server is up" % server_type)
        if hasattr(route_param, "frontend_id"):     # a session: default_route_key, inlined
            key = route_param.uid
            if key is None:
                key = route_param.id
        else:
            key = route_param
        return servers[crc32_key(key) % len(servers)].id   # pick_by_key, inlined (every request)
