"""Base-128 varints, low group first: the one writer and the one reader of the package.

Pomelo writes message ids this way (at most 5 bytes, docs/protocol.md section 6), and pomelo-protobuf
its keys, numbers, lengths and counts (at most 10 bytes). Every read takes a byte limit, so a
peer's never-ending varint costs at most that many bytes of work and never builds a huge int.
Hot paths may test for a one-byte varint inline (`data[pos] < 0x80`) before calling `read`.
"""
from zpomelo.errors import ProtocolError

_BYTE = [bytes((i,)) for i in range(256)]


def encode(value):
    """Varint bytes of a non-negative int (no range check: callers check)."""
    if value < 0x80:
        return _BYTE[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if value < 0x200000:
        return bytes(((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, value >> 14))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read(data, pos, end, max_bytes, what):
    """(value, next_pos) of the varint at `pos`, which must end before `end` and within
    `max_bytes` bytes; otherwise ProtocolError naming `what` ("message id", "protobuf").
    Non-minimal encodings (a trailing 0x80 group) are accepted, as Pomelo's decoders do."""
    result = 0
    shift = 0
    limit = pos + max_bytes
    while True:
        if pos >= end:
            raise ProtocolError("%s varint runs past the end of the data" % what)
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        if pos >= limit:
            raise ProtocolError("%s varint is longer than %d bytes" % (what, max_bytes))
        shift += 7
