"""Pomelo package layer (docs/protocol.md section 2): | type: 1 byte | length: 3 bytes BE | body |."""
import struct

from zpomelo.errors import ProtocolError

HANDSHAKE = 1
HANDSHAKE_ACK = 2
HEARTBEAT = 3
DATA = 4
KICK = 5

HEADER_SIZE = 4
MAX_BODY_LIMIT = (1 << 24) - 1
DEFAULT_MAX_BODY = 65536

_TYPE_NAMES = {HANDSHAKE: "HANDSHAKE", HANDSHAKE_ACK: "HANDSHAKE_ACK", HEARTBEAT: "HEARTBEAT",
               DATA: "DATA", KICK: "KICK"}

# One 32-bit big-endian word holds the type (top byte) and the length (low 3 bytes).
_HEADER = struct.Struct(">I")
pack_header = _HEADER.pack
_unpack_header = _HEADER.unpack_from

HEARTBEAT_PACKAGE = b"\x03\x00\x00\x00"
HANDSHAKE_ACK_PACKAGE = b"\x02\x00\x00\x00"


def encode(ptype, body=b""):
    """Return one whole package: header + body."""
    if ptype not in _TYPE_NAMES:
        raise ProtocolError("package type %r is not one of 1..5" % (ptype,))
    n = len(body)
    if n > MAX_BODY_LIMIT:
        raise ProtocolError("package body of %d bytes exceeds the protocol maximum of %d bytes"
                            % (n, MAX_BODY_LIMIT))
    return pack_header((ptype << 24) | n) + body


def encode_data(body):
    """A DATA package; the hot path of every response and push (body must fit in 3 length bytes)."""
    n = len(body)
    if n > MAX_BODY_LIMIT:
        raise ProtocolError("message of %d bytes exceeds the protocol maximum of %d bytes"
                            % (n, MAX_BODY_LIMIT))
    return pack_header(0x04000000 | n) + body


class PackageDecoder:
    """Incremental decoder: feed bytes in any chunking, get back every complete package.

    `feed(data)` always returns a list of `(ptype, body)`; `body` is `bytes`. A bad type byte is
    rejected as soon as it arrives and a too-long length as soon as its header is complete, so the
    internal buffer never holds more than one header plus `max_body` bytes. After an error the
    decoder stays failed: the connection must be closed.
    """

    __slots__ = ("max_body", "_buf", "_error")

    def __init__(self, max_body=DEFAULT_MAX_BODY):
        if not isinstance(max_body, int) or not 0 <= max_body <= MAX_BODY_LIMIT:
            raise ValueError("max_body must be an int in 0..%d, got %r"
                             % (MAX_BODY_LIMIT, max_body))
        self.max_body = max_body
        self._buf = bytearray()
        self._error = None

    @property
    def buffered(self):
        """Bytes held for an incomplete package."""
        return len(self._buf)

    def feed(self, data):
        if self._error is not None:
            raise ProtocolError(self._error)
        out = []
        n = len(data)
        if not n:
            return out
        if data.__class__ is not bytes:
            data = memoryview(data).cast("B")
        pos = 0
        if self._buf:
            pos = self._complete_buffered(data, n, out)
            if self._buf or pos == n:
                return out
        max_body = self.max_body
        is_bytes = data.__class__ is bytes
        while n - pos >= HEADER_SIZE:
            word = _unpack_header(data, pos)[0]
            length = word & 0xFFFFFF
            self._check(word >> 24, length, max_body)
            end = pos + HEADER_SIZE + length
            if end > n:
                break
            body = data[pos + HEADER_SIZE:end]
            out.append((word >> 24, body if is_bytes else bytes(body)))
            pos = end
        if pos < n:
            if n - pos < HEADER_SIZE:
                self._check_type(data[pos])
            self._buf += data[pos:]
        return out

    def _complete_buffered(self, data, n, out):
        """Top up the buffered partial package from `data`; return how many bytes were used.

        Only the bytes the pending package still needs are copied into the buffer.
        """
        buf = self._buf
        pos = 0
        have = len(buf)
        if have < HEADER_SIZE:
            take = min(HEADER_SIZE - have, n)
            buf += data[:take]
            pos = take
            if len(buf) < HEADER_SIZE:
                return pos
        word = _unpack_header(buf, 0)[0]
        length = word & 0xFFFFFF
        self._check(word >> 24, length, self.max_body)
        take = min(HEADER_SIZE + length - len(buf), n - pos)
        if take:
            buf += data[pos:pos + take]
            pos += take
        if len(buf) == HEADER_SIZE + length:
            with memoryview(buf) as view:
                out.append((word >> 24, view[HEADER_SIZE:].tobytes()))
            buf.clear()
        return pos

    def finish(self):
        """Call when the stream ends: raises ProtocolError if it ended inside a package."""
        buf = self._buf
        if buf:
            if len(buf) < HEADER_SIZE:
                message = "stream ended inside a package header (%d of 4 bytes)" % len(buf)
            else:
                message = "stream ended inside a package: %d of %d body bytes" % (
                    len(buf) - HEADER_SIZE, _unpack_header(buf, 0)[0] & 0xFFFFFF)
            self._buf = bytearray()
            raise ProtocolError(message)

    def _check_type(self, ptype):
        if not 1 <= ptype <= 5:
            self._fail("package type byte 0x%02x is not one of 1..5" % ptype)

    def _check(self, ptype, length, max_body):
        if not 1 <= ptype <= 5:
            self._fail("package type byte 0x%02x is not one of 1..5" % ptype)
        if length > max_body:
            self._fail("%s package of %d bytes exceeds the limit of %d bytes"
                       % (_TYPE_NAMES[ptype], length, max_body))

    def _fail(self, message):
        self._error = message
        self._buf = bytearray()
        raise ProtocolError(message)
