"""Route dictionary: numbering, version, handshake fields, bad input."""
import base64
import hashlib
import json

import pytest

from zpomelo.errors import ConfigError, ProtocolError
from zpomelo.protocol.dictionary import RouteDictionary, js_key_order, js_stringify


def test_sorted_handler_routes_then_extra_routes_in_file_order():
    d = RouteDictionary(["chat.chatHandler.send", "area.h.move", "connector.entryHandler.entry"],
                        ["onChat", "onAdd", "area.h.move", "onChat", "onLeave"])
    assert d.route_to_code == {"area.h.move": 1, "chat.chatHandler.send": 2,
                               "connector.entryHandler.entry": 3,
                               "onChat": 4, "onAdd": 5, "onLeave": 6}
    assert list(d.route_to_code) == ["area.h.move", "chat.chatHandler.send",
                                     "connector.entryHandler.entry", "onChat", "onAdd", "onLeave"]
    assert d.code_to_route[4] == "onChat"
    assert d.code_of("onAdd") == 5 and d.code_of("nope") is None
    assert d.route_of(6) == "onLeave"
    assert len(d) == 6 and "onChat" in d


def test_plain_string_order_is_code_unit_order():
    # Uppercase sorts before lowercase, like Array.prototype.sort().
    d = RouteDictionary(["b.h.x", "B.h.x", "a.h.Z", "a.h.a"])
    assert list(d.route_to_code) == ["B.h.x", "a.h.Z", "a.h.a", "b.h.x"]


def test_version_is_base64_md5_of_compact_json():
    d = RouteDictionary(["a.b.c"], ["onX", "ünï"])
    text = '{"a.b.c":1,"onX":2,"ünï":3}'
    assert d.version == base64.b64encode(hashlib.md5(text.encode("utf-8")).digest()).decode()


def test_js_key_order_puts_integer_keys_first():
    assert list(js_key_order({"b": 1, "10": 2, "2": 3, "01": 4, "a": 5})) == \
        ["2", "10", "b", "01", "a"]
    assert js_stringify({"x": [{"2": 1, "1": 2}]}) == '{"x":[{"1":2,"2":1}]}'


def test_handshake_sys_full_and_short():
    d = RouteDictionary(["a.b.c", "a.b.d"], ["onX"])
    full = d.handshake_sys(None)
    assert list(full) == ["dict", "routeToCode", "codeToRoute", "dictVersion", "useDict"]
    assert full["dict"] == full["routeToCode"] == {"a.b.c": 1, "a.b.d": 2, "onX": 3}
    assert full["codeToRoute"] == {"1": "a.b.c", "2": "a.b.d", "3": "onX"}
    assert full["dictVersion"] == d.version and full["useDict"] is True
    assert d.handshake_sys("old") == full
    assert d.handshake_sys("") == full
    assert d.handshake_sys(d.version) == {"useDict": True}
    assert json.loads(json.dumps(full))["codeToRoute"]["3"] == "onX"


def test_unknown_code_raises_protocol_error():
    d = RouteDictionary(["a.b.c"])
    for code in (0, 2, 65535, None):
        with pytest.raises(ProtocolError, match="not in the route dictionary"):
            d.route_of(code)


@pytest.mark.parametrize("handler_routes, extra", [
    ("a.b.c", ()), ([""], ()), ([5], ()), (["a.b.c"], [None]), (["a.b.c"], "onX"),
])
def test_bad_routes_raise_config_error(handler_routes, extra):
    with pytest.raises(ConfigError):
        RouteDictionary(handler_routes, extra)


def test_too_many_routes():
    RouteDictionary([], ["r%d" % i for i in range(65535)])
    with pytest.raises(ConfigError, match="at most 65535"):
        RouteDictionary([], ["r%d" % i for i in range(65536)])
