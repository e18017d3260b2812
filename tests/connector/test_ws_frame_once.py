"""A push written to many WebSocket clients is framed once (the same bytes object each time)."""
import pytest

from zpomelo.connector import ws
from zpomelo.protocol import websocket

pytestmark = pytest.mark.timeout(10)


def test_the_same_package_is_framed_once_and_others_are_framed_as_they_are():
    push = b"\x04\x00\x00\x05push!"
    first = ws._frame_once(push)
    assert first == websocket.encode_frame(push)
    assert ws._frame_once(push) is first                 # not framed again
    other = bytes(push)                                  # equal bytes, another object
    assert ws._frame_once(b"\x04\x00\x00\x01x") == websocket.encode_frame(b"\x04\x00\x00\x01x")
    assert ws._frame_once(other) == first
    big = b"\x04" + b"y" * 70000
    assert websocket.FrameDecoder(1 << 20).feed(ws._frame_once(big)) == [(websocket.BINARY, big)]
    assert ws._frame_batch([b"ab", b"cd"]) == websocket.encode_frame(b"abcd")
