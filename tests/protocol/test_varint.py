"""protocol/varint.py: the one varint reader (byte limit, end bound) and writer."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zpomelo.errors import ProtocolError
from zpomelo.protocol import varint


def reference_read(data, pos, end, max_bytes):
    """The textbook decoder, written differently on purpose: groups collected, then joined."""
    groups = []
    while True:
        if pos >= end:
            return "past the end"
        groups.append(data[pos] & 0x7F)
        pos += 1
        if data[pos - 1] < 0x80:
            return sum(g << (7 * i) for i, g in enumerate(groups)), pos
        if len(groups) == max_bytes:
            return "too long"


@pytest.mark.parametrize("value, encoded", [
    (0, "00"), (1, "01"), (127, "7f"), (128, "80 01"), (300, "ac 02"), (16383, "ff 7f"),
    (16384, "80 80 01"), (2 ** 21 - 1, "ff ff 7f"), (2 ** 21, "80 80 80 01"),
    (2 ** 32 - 1, "ff ff ff ff 0f"), (2 ** 64 - 1, "ff ff ff ff ff ff ff ff ff 01"),
])
def test_known_encodings_round_trip(value, encoded):
    raw = bytes.fromhex(encoded.replace(" ", ""))
    assert varint.encode(value) == raw
    assert varint.read(raw + b"tail", 0, len(raw) + 4, 10, "x") == (value, len(raw))


@given(st.integers(min_value=0, max_value=2 ** 70 - 1), st.binary(max_size=4))
def test_round_trip(value, tail):
    raw = varint.encode(value)
    assert varint.read(raw + tail, 0, len(raw) + len(tail), 10, "x") == (value, len(raw))


@given(st.binary(max_size=14), st.integers(0, 3), st.integers(1, 10))
def test_matches_the_reference_on_any_bytes(data, pos, max_bytes):
    pos = min(pos, len(data))
    expected = reference_read(data, pos, len(data), max_bytes)
    if expected == "past the end":
        with pytest.raises(ProtocolError, match="x varint runs past the end"):
            varint.read(data, pos, len(data), max_bytes, "x")
    elif expected == "too long":
        with pytest.raises(ProtocolError, match="x varint is longer than %d bytes" % max_bytes):
            varint.read(data, pos, len(data), max_bytes, "x")
    else:
        assert varint.read(data, pos, len(data), max_bytes, "x") == expected


def test_end_bounds_the_read_before_the_buffer_does():
    data = b"\x80\x01"
    with pytest.raises(ProtocolError, match="runs past the end"):
        varint.read(data, 0, 1, 5, "message id")


def test_the_byte_limit_stops_a_never_ending_varint_early():
    data = b"\xff" * 1000 + b"\x01"
    with pytest.raises(ProtocolError, match="protobuf varint is longer than 10 bytes"):
        varint.read(data, 0, len(data), 10, "protobuf")
    # Exactly at the limit is fine; a non-minimal trailing group is accepted.
    assert varint.read(b"\x81\x80\x80\x80\x00", 0, 5, 5, "message id") == (1, 5)
