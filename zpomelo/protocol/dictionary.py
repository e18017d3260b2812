"""The route dictionary (route compression, docs/protocol.md sections 4 and 7).

Every handler route, sorted, is numbered from 1; then the routes of `config/dictionary.json`
(push routes such as `onChat`) follow in file order. `version` is computed exactly as Pomelo does:
base64(md5(JSON.stringify(routeToCode))), so a client that cached Pomelo's dictionary keeps it.
"""
import base64
import hashlib

from zpomelo.errors import ConfigError, ProtocolError
from zpomelo.protocol import jsjson

MAX_CODE = 0xFFFF
# JavaScript's property order and JSON.stringify live in jsjson; Pomelo hashes that JSON into
# its dictionary and proto versions.
js_key_order = jsjson.js_key_order
js_stringify = jsjson.stringify


def js_md5_base64(text):
    """crypto.createHash('md5').update(text).digest('base64') for a JS string."""
    return base64.b64encode(hashlib.md5(text.encode("utf-8")).digest()).decode("ascii")


def _utf16_order(route):
    # Array.prototype.sort() compares UTF-16 code units; differs from code points only above U+FFFF.
    return route.encode("utf-16-be", "surrogatepass")


class RouteDictionary:
    """Route <-> 2-byte code mapping shared by every frontend of a cluster."""

    __slots__ = ("route_to_code", "code_to_route", "version", "_full_sys", "_short_sys")

    def __init__(self, handler_routes, extra_routes=()):
        routes = sorted(set(self._check_routes(handler_routes, "handler route")), key=_utf16_order)
        route_to_code = {}
        for route in routes:
            route_to_code[route] = len(route_to_code) + 1
        for route in self._check_routes(extra_routes, "dictionary.json entry"):
            if route not in route_to_code:
                route_to_code[route] = len(route_to_code) + 1
        if len(route_to_code) > MAX_CODE:
            raise ConfigError("the route dictionary has %d routes; at most %d fit in a 2-byte code"
                              % (len(route_to_code), MAX_CODE), field="dictionary")
        self.route_to_code = route_to_code
        self.code_to_route = {code: route for route, code in route_to_code.items()}
        self.version = js_md5_base64(js_stringify(route_to_code))
        # Key order as Pomelo's handshake command writes them.
        self._full_sys = {
            "dict": route_to_code,
            "routeToCode": route_to_code,
            "codeToRoute": {str(code): route for code, route in self.code_to_route.items()},
            "dictVersion": self.version,
            "useDict": True,
        }
        self._short_sys = {"useDict": True}

    @staticmethod
    def _check_routes(routes, what):
        if isinstance(routes, (str, bytes)):
            raise ConfigError("%ss must be a list of strings, got one string %r" % (what, routes),
                              field="dictionary")
        checked = []
        for route in routes:
            if not isinstance(route, str) or not route:
                raise ConfigError("%s %r is not a non-empty string" % (what, route),
                                  field="dictionary")
            checked.append(route)
        return checked

    def __len__(self):
        return len(self.route_to_code)

    def __contains__(self, route):
        return route in self.route_to_code

    def code_of(self, route):
        """The code of `route`, or None when the route is not in the dictionary."""
        return self.route_to_code.get(route)

    def route_of(self, code):
        """The route of `code`; raises ProtocolError for a code the dictionary does not have."""
        try:
            return self.code_to_route[code]
        except (KeyError, TypeError):
            raise ProtocolError("route code %r is not in the route dictionary (%d routes)"
                                % (code, len(self.code_to_route))) from None

    def handshake_sys(self, client_version=None):
        """The fields to merge into the handshake reply's `sys` (a fresh dict each call).

        The whole dictionary is sent only when the client's cached `dictVersion` differs.
        """
        if client_version and client_version == self.version:
            return dict(self._short_sys)
        return dict(self._full_sys)
