"""Message layer: round trips for every type, ids, routes, and each kind of malformed message."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zpomelo.errors import ProtocolError
from zpomelo.protocol import message
from zpomelo.protocol.message import MAX_ID, NOTIFY, PUSH, REQUEST, RESPONSE

ids = st.integers(0, MAX_ID)
# Routes up to 255 UTF-8 bytes (multi-byte characters included).
routes = st.text(max_size=255).filter(lambda r: len(r.encode("utf-8")) <= 255)
codes = st.integers(0, 0xFFFF)
bodies = st.binary(max_size=2048)


@settings(max_examples=200)
@given(st.sampled_from([REQUEST, NOTIFY, RESPONSE, PUSH]), ids, st.one_of(routes, codes), bodies)
def test_round_trip_all_types(mtype, msg_id, route, body):
    data = message.encode(mtype, msg_id, None if mtype == RESPONSE else route, body)
    decoded = message.decode(data)
    assert decoded.type == mtype
    assert decoded.id == (msg_id if mtype in (REQUEST, RESPONSE) else 0)
    assert decoded.route == (None if mtype == RESPONSE else route)
    assert decoded.body == body
    assert type(decoded.body) is bytes


@given(ids)
def test_id_varint_round_trip(msg_id):
    encoded = message.encode_id(msg_id)
    assert 1 <= len(encoded) <= 5
    assert message.decode_id(encoded + b"tail", 0) == (msg_id, len(encoded))


def test_fast_paths_equal_the_generic_encoder():
    assert message.encode_request(7, "a.b.c", b"x") == message.encode(REQUEST, 7, "a.b.c", b"x")
    assert message.encode_notify(9, b"x") == message.encode(NOTIFY, 0, 9, b"x")
    assert message.encode_response(300, b"x") == message.encode(RESPONSE, 300, None, b"x")
    assert message.encode_push("onX", b"x") == message.encode(PUSH, 0, "onX", b"x")
    assert message.request_prefix(300, "a.b.c") + b"x" == message.encode_request(300, "a.b.c", b"x")
    assert message.response_prefix(300) == b"\x04\xac\x02"


def test_longest_route():
    route = "é" * 127 + "x"                      # 255 bytes
    data = message.encode_push(route, b"{}")
    assert data[1] == 255
    assert message.decode(data).route == route
    with pytest.raises(ProtocolError, match="at most 255"):
        message.encode_push(route + "x", b"{}")


@pytest.mark.parametrize("bad_id", [-1, MAX_ID + 1, 1.5, "1", None])
def test_encode_rejects_bad_ids(bad_id):
    with pytest.raises(ProtocolError, match="message id"):
        message.encode_request(bad_id, "a.b.c", b"")


@pytest.mark.parametrize("bad_route", [-1, 0x10000, 1.5, None, b"a.b.c", "\ud800"])
def test_encode_rejects_bad_routes(bad_route):
    with pytest.raises(ProtocolError):
        message.encode_push(bad_route, b"")


def test_encode_rejects_unknown_type():
    with pytest.raises(ProtocolError, match="message type"):
        message.encode(4, 0, "r", b"")


@pytest.mark.parametrize("data, match", [
    (b"", "empty message"),
    (b"\x10\x01\x05a.b.c", "gzip"),                        # request with the gzip bit
    (b"\x16\x05onX", "gzip"),                              # push with the gzip bit
    (b"\x20\x01\x05a.b.c", "reserved bits"),
    (b"\x08\x01", "unknown message type 4"),
    (b"\x0e", "unknown message type 7"),
    (b"\x00", "id varint runs past the end"),
    (b"\x00\x80\x80", "id varint runs past the end"),
    (b"\x00\xff\xff\xff\xff\xff\x01\x00", "longer than 5 bytes"),     # never-ending varint
    (b"\x00\xff\xff\xff\xff\x1f\x00", "exceeds 2\\^32-1"),
    (b"\x00\x01", "route length byte is missing"),
    (b"\x00\x01\x09a.b", "runs past the end"),             # route length past the end
    (b"\x06\xffabc", "runs past the end"),
    (b"\x01\x01\x00", "route code runs past the end"),
    (b"\x07\x01", "route code runs past the end"),
    (b"\x02\x02\xc3\x28", "not valid UTF-8"),
    (b"\x05\x01{}", "carries no route"),
])
def test_malformed_messages(data, match):
    with pytest.raises(ProtocolError, match=match):
        message.decode(data)


def test_decode_accepts_bytearray_and_memoryview():
    data = message.encode_request(5, "a.b.c", b"{}")
    assert message.decode(bytearray(data)) == message.decode(data)
    assert message.decode(memoryview(data)) == message.decode(data)


def test_non_minimal_id_varint_is_accepted():
    assert message.decode(b"\x04\x81\x00{}") == (RESPONSE, 1, None, b"{}")
