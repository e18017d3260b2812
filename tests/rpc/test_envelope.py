"""rpc/envelope.py: shapes, batching, and bad bytes -> ProtocolError only."""
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zpomelo.errors import ProtocolError
from zpomelo.rpc import envelope
from zpomelo.rpc.envelope import EnvelopePacker, join_frame, pack_frame, unpack_replies, unpack_requests


def test_request_and_notify_round_trip_in_one_frame():
    packer = EnvelopePacker()
    frame = join_frame([
        packer.request(7, "chat.chatRemote", "add", ["uid", "conn-1", {"rid": 3}]),
        packer.notify("chat.chatRemote", "leave", ["uid"]),
    ])
    assert unpack_requests(frame) == [
        [0, 7, "chat.chatRemote", "add", ["uid", "conn-1", {"rid": 3}]],
        [1, 0, "chat.chatRemote", "leave", ["uid"]],
    ]


def test_replies_round_trip_with_bytes_and_int_keys():
    packer = EnvelopePacker()
    frame = join_frame([
        packer.reply(1, {"body": b"\x00\xff", 5: "five"}),
        packer.error(2, "KeyError", 404, "no such room"),
    ])
    assert unpack_replies(frame) == [
        [2, 1, True, {"body": b"\x00\xff", 5: "five"}],
        [2, 2, False, ["KeyError", 404, "no such room"]],
    ]


@pytest.mark.parametrize("count", [0, 1, 15, 16, 65535, 65536])
def test_join_frame_header_matches_msgpack_for_every_size(count):
    packer = EnvelopePacker()
    one = packer.notify("s", "m", [])
    frame = join_frame([one] * count)
    assert frame == msgpack.packb([[1, 0, "s", "m", []]] * count)
    assert len(unpack_requests(frame)) == count


def test_error_of_uses_code_attribute_or_500():
    class Coded(Exception):
        code = 403

    assert envelope.error_of(Coded("forbidden")) == ["Coded", 403, "forbidden"]
    assert envelope.error_of(ValueError("bad")) == ["ValueError", 500, "bad"]
    weird = ValueError("x")
    weird.code = "not-an-int"
    assert envelope.error_of(weird) == ["ValueError", 500, "x"]


def test_unserializable_argument_raises_in_the_packer_and_packer_still_works():
    packer = EnvelopePacker()
    with pytest.raises(TypeError):
        packer.request(1, "s", "m", [object()])
    assert unpack_requests(join_frame([packer.request(2, "s", "m", [1])])) == [[0, 2, "s", "m", [1]]]


@pytest.mark.parametrize("frame", [
    b"",
    b"\xc1",  # never-used msgpack byte
    b"\x92\x01",  # truncated array
    msgpack.packb([1, 2]) + b"\x00",  # trailing bytes
    msgpack.packb({"a": 1}),  # not an array
    msgpack.packb([[0, 1, "s", "m"]]),  # 4 items
    msgpack.packb([[5, 1, "s", "m", []]]),  # bad kind
    msgpack.packb([[2, 1, True, None]]),  # a reply where a request belongs
    msgpack.packb([[0, "1", "s", "m", []]]),  # call id not int
    msgpack.packb([[0, 1, b"s", "m", []]]),  # service as bytes
    msgpack.packb([0, 1, "s", "m", []]),  # a bare envelope, not a frame
    b"\x91\xa2\xff\xfe",  # invalid utf-8 string
])
def test_bad_request_frames_raise_protocol_error(frame):
    with pytest.raises(ProtocolError):
        unpack_requests(frame)


@pytest.mark.parametrize("frame", [
    msgpack.packb([[2, 1, "yes", 1]]),  # ok flag not bool
    msgpack.packb([[2, 1, False, "boom"]]),  # error not a triple
    msgpack.packb([[2, 1, False, ["T", "500", "m"]]]),  # code not int
    msgpack.packb([[0, 1, "s", "m", []]]),  # a request where a reply belongs
    msgpack.packb([[2, 1, True]]),
])
def test_bad_reply_frames_raise_protocol_error(frame):
    with pytest.raises(ProtocolError):
        unpack_replies(frame)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_raise_nothing_but_protocol_error(data):
    for unpack in (unpack_requests, unpack_replies):
        try:
            result = unpack(data)
        except ProtocolError:
            continue
        assert isinstance(result, list)


def test_pack_frame_convenience_matches_join_frame():
    packer = EnvelopePacker()
    assert pack_frame([[0, 3, "s", "m", [1]]]) == join_frame([packer.request(3, "s", "m", [1])])


def test_values_json_can_hold_but_msgpack_cannot_cross_intact():
    """Big ints ride as ext type 1 and lone surrogates as surrogatepass UTF-8 (see module doc)."""
    packer = EnvelopePacker()
    args = [2 ** 64, -2 ** 63 - 1, 10 ** 300, -(10 ** 300), 2 ** 64 - 1, "\ud800", {"\udfff x": ["\ud83d"]}]
    [env] = unpack_requests(join_frame([packer.request(7, "s", "m", args)]))
    assert env == [0, 7, "s", "m", args]
    [reply, error] = unpack_replies(join_frame([packer.reply(8, {"n": 2 ** 70}),
                                                packer.error_from(9, ValueError("bad \ud800"))]))
    assert reply == [2, 8, True, {"n": 2 ** 70}]
    assert error == [2, 9, False, ["ValueError", 500, "bad \ud800"]]
    assert packer.request(10, "s", "m", [1]) == msgpack.packb([0, 10, "s", "m", [1]])  # plain as before


def test_what_cannot_be_packed_says_why_and_leaves_the_packer_usable():
    packer = EnvelopePacker()
    with pytest.raises(TypeError, match="type object cannot be sent over rpc"):
        packer.request(1, "s", "m", [object()])
    deep = []
    for _ in range(2000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        packer.reply(2, deep)
    assert unpack_replies(join_frame([packer.reply(3, "ok")])) == [[2, 3, True, "ok"]]
