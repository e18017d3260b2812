"""Every value a JSON body can carry crosses a real cluster, or is answered with a clear error.

A fuzzer found that `{"x": 99999999999999999999999}` (an int msgpack cannot carry) or
`{"x": "\\ud800"}` (a lone surrogate) sent to a forwarded route was never answered and held every
later answer on that connection behind it. Here hypothesis writes arbitrary JSON texts (huge
ints, lone surrogate escapes, NaN/Infinity literals, numbers past the double range, deep
nesting, long strings) and sends them, as raw body bytes, over a real TCP client to a real
frontend and backend (InProcessCluster): local and forwarded requests, notifies, and pushes from
the frontend itself and from a backend over the bus. Each request is answered (a wait that times
out fails the test), with the value intact or with code 500 for a body that is not JSON.
"""
import json
import math
import os

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from zpomelo.protocol import message, package
from zpomelo.protocol.codec import ClientCodec
from zpomelo.testing import InProcessCluster

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "apps", "jsonvalues")
pytestmark = pytest.mark.timeout(120)
TIMEOUT = 5


class RawJson:
    """A body sent as these exact JSON bytes (the client would otherwise re-encode it)."""

    def __init__(self, text):
        self.text = text


class RawBodyCodec(ClientCodec):
    def encode_request(self, msg_id, route, obj):
        if isinstance(obj, RawJson):
            return package.encode_data(message.encode_request(msg_id, route, obj.text.encode("utf-8")))
        return super().encode_request(msg_id, route, obj)

    def encode_notify(self, route, obj):
        if isinstance(obj, RawJson):
            return package.encode_data(message.encode_notify(route, obj.text.encode("utf-8")))
        return super().encode_notify(route, obj)


class Token:
    """A number literal written as it is (NaN, Infinity, 1e400...)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def to_text(value):
    if isinstance(value, Token):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join("%s:%s" % (json.dumps(k), to_text(v)) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_text(v) for v in value) + "]"
    return json.dumps(value)    # ensure_ascii: a lone surrogate goes out as a \udXXX escape


LONE_SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
STRINGS = st.one_of(
    st.text(max_size=20),
    st.lists(st.one_of(LONE_SURROGATES, st.characters()), max_size=8).map("".join),
    st.integers(1000, 60000).map(lambda n: "x" * n),
)
INTS = st.one_of(
    st.integers(-2 ** 70, 2 ** 70),
    st.sampled_from([2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64, -2 ** 63, -2 ** 63 - 1,
                     99999999999999999999999, 10 ** 300, -10 ** 300]),
)
NUMBER_TOKENS = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "-0", "-0.0",
                                 "1e-7", "0.000001", "5e-324", "1E+21"]).map(Token)
LEAVES = st.one_of(st.none(), st.booleans(), INTS, st.floats(allow_nan=False, allow_infinity=False),
                   STRINGS, NUMBER_TOKENS)
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(STRINGS.filter(lambda s: len(s) < 100), inner, max_size=4)),
    max_leaves=12)
NESTED = st.integers(1, 3000).map(lambda n: Token("[" * n + "1" + "]" * n))
BODIES = st.one_of(VALUES, NESTED).map(lambda value: {"v": value})


DEEP_LEVELS = 400
# a package over the frontend's 64 KiB limit closes the connection (tests/connector covers that);
# here every body fits, so one module-scoped client serves every example (texts are ASCII)
BODY_LIMIT = 60000


def text_depth(text):
    """How deeply the brackets of a JSON text nest (strings skipped)."""
    level = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            level += 1
            deepest = max(deepest, level)
        elif ch in "]}":
            level -= 1
    return deepest


def expected_of(text):
    """What the server should answer for this body text: the value as Python reads it, with the
    infinities as null (JSON.stringify's rule); None when the body is not JSON (NaN literals);
    DEEP past DEEP_LEVELS, where either the value or a clear error is right."""
    if text_depth(text) > DEEP_LEVELS:
        return DEEP

    def refuse(name):
        raise ValueError(name)
    try:
        value = json.loads(text, parse_constant=refuse)
    except ValueError:
        return None

    def normal(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, list):
            return [normal(x) for x in v]
        if isinstance(v, dict):
            return {k: normal(x) for k, x in v.items()}
        return v
    return normal(value)


DEEP = "deep"


def same(a, b):
    """Equality where -0.0 == 0.0 and NaN never occurs (it is refused)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) or a == b


@pytest.fixture(scope="module")
def cluster():
    with InProcessCluster(APP_DIR, "test") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster):
    client = cluster.connect("connector-1", request_timeout=TIMEOUT)
    client._codec.__class__ = RawBodyCodec
    assert client.request("connector.entryHandler.bind", {"uid": "fuzz"}) == {"code": 200}
    return client


def check_answer(answer, expected, text, route):
    if expected is None:
        assert answer.get("code") == 500, (route, text[:200], answer)
        return
    if expected is DEEP:    # past what JSON decoding or RPC packing takes: a clear error is fine
        assert answer.get("code") == 500 or "msg" in answer, (route, answer)
        return
    assert "msg" in answer, (route, text[:200], answer)
    assert same(answer["msg"], expected), (route, text[:200], answer)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=BODIES)
def test_any_json_body_is_answered_on_local_and_forwarded_routes(cluster, client, body):
    text = to_text(body)
    assume(len(text) < BODY_LIMIT)
    expected = expected_of(text)
    for route in ("connector.entryHandler.echo", "echo.echoHandler.echo"):
        check_answer(client.request(route, RawJson(text)), expected, text, route)
    # the connection is not held behind anything
    assert client.request("echo.echoHandler.echo", {"after": 1}) == {"msg": {"after": 1}}


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=BODIES)
def test_any_json_notify_reaches_the_backend_or_is_dropped_alone(cluster, client, body):
    text = to_text(body)
    assume(len(text) < BODY_LIMIT)
    expected = expected_of(text)
    assert client.request("echo.echoHandler.echo", {"reset": 1})   # same RPC socket: ordered
    client.notify("echo.echoHandler.note", {"marker": 1})
    client.notify("echo.echoHandler.note", RawJson(text))
    noted = client.request("echo.echoHandler.last", {})["noted"]
    if expected is None:
        assert noted == {"marker": 1}, noted
    elif expected is DEEP:
        assert noted == {"marker": 1} or (isinstance(noted, dict) and "v" in noted), type(noted)
    else:
        assert same(noted, expected), (text[:200], noted)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=VALUES.map(lambda value: {"v": value}))
def test_any_json_value_can_be_pushed_from_the_frontend_and_over_the_bus(cluster, client, body):
    text = to_text(body)
    assume(len(text) < BODY_LIMIT)
    expected = expected_of(text)
    for route in ("connector.entryHandler.push_back", "echo.echoHandler.push_back"):
        answer = client.request(route, RawJson(text))
        if expected is None:
            assert answer.get("code") == 500, (route, answer)
            continue
        assert answer == {"code": 200}, (route, text[:200], answer)
        pushed = client.wait_push("onBack", timeout=TIMEOUT)
        assert same(pushed, expected), (route, text[:200], pushed)
