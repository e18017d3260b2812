"""Pomelo message layer, the content of a DATA package (docs/protocol.md section 6).

    flag: 1 byte | id: varint (REQUEST, RESPONSE) | route (REQUEST, NOTIFY, PUSH) | body: the rest

Flag bits: bit0 = route is a 2-byte dictionary code, bits 1-3 = type, bit 4 = gzip (never set by
Pomelo, rejected here), bits 5-7 unused (rejected here). A route is a `str` (1 length byte + UTF-8)
or an `int` dictionary code (2 bytes big-endian).
"""
from typing import NamedTuple, Optional, Union

from zpomelo.errors import ProtocolError
from zpomelo.protocol.varint import encode as _encode_varint
from zpomelo.protocol.varint import read as _read_varint

REQUEST = 0
NOTIFY = 1
RESPONSE = 2
PUSH = 3

MAX_ID = (1 << 32) - 1
MAX_ID_BYTES = 5
MAX_ROUTE_BYTES = 255
MAX_ROUTE_CODE = 0xFFFF

_TYPE_NAMES = ("REQUEST", "NOTIFY", "RESPONSE", "PUSH")
_FLAG_ROUTE_CODE = 0x01
_BYTE = [bytes((i,)) for i in range(256)]
# Encoded routes repeat endlessly (a game has a few hundred); a bounded cache keeps them.
_ROUTE_CACHE_SIZE = 4096


class Message(NamedTuple):
    type: int
    id: int
    route: Union[str, int, None]
    body: bytes


_new_message = tuple.__new__


def encode_id(msg_id):
    """Base-128 varint, low group first (1 -> 01, 300 -> ac 02)."""
    if msg_id.__class__ is not int or not 0 <= msg_id <= MAX_ID:
        raise ProtocolError("message id %r is not an integer in 0..%d" % (msg_id, MAX_ID))
    return _encode_varint(msg_id)


def decode_id(data, pos):
    """Read a message id varint at `pos`; return (id, next_pos). At most 5 bytes, at most 2^32-1."""
    result, pos = _read_varint(data, pos, len(data), MAX_ID_BYTES, "message id")
    if result > MAX_ID:
        raise ProtocolError("message id %d exceeds 2^32-1" % result)
    return result, pos


def decode_utf8(raw):
    """UTF-8 bytes -> str. Also takes the CESU-8 that Pomelo's browser client writes for characters
    above U+FFFF (each UTF-16 half as its own 3-byte sequence), joining the halves."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("utf-8", "surrogatepass").encode("utf-16-le", "surrogatepass") \
            .decode("utf-16-le")
    except UnicodeError:
        raise ProtocolError("text is not valid UTF-8") from None


def _route_field(route):
    """The route as it appears after the flag/id: 1 length byte + UTF-8, or a 2-byte code."""
    if route.__class__ is str:
        try:
            raw = route.encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError("route %r is not encodable as UTF-8" % (route,)) from None
        if len(raw) > MAX_ROUTE_BYTES:
            raise ProtocolError("route %r is %d UTF-8 bytes; the protocol allows at most %d"
                                % (route[:40] + "...", len(raw), MAX_ROUTE_BYTES))
        return _BYTE[len(raw)] + raw
    if route.__class__ is int and 0 <= route <= MAX_ROUTE_CODE:
        return route.to_bytes(2, "big")
    raise ProtocolError("route must be a str or a dictionary code in 0..65535, got %r" % (route,))


def _make_prefix_cache(type_flag):
    """A cached `route -> flag byte + route field` function for one message type."""
    cache = {}

    def prefix(route):
        try:
            return cache[route]
        except KeyError:
            pass
        except TypeError:
            raise ProtocolError("route must be a str or an int, got %r" % (route,)) from None
        field = _route_field(route)
        flag = type_flag | (_FLAG_ROUTE_CODE if route.__class__ is int else 0)
        value = _BYTE[flag] + field
        if len(cache) >= _ROUTE_CACHE_SIZE:
            cache.clear()
        cache[route] = value
        return value

    return prefix


_FLAG_REQUEST = REQUEST << 1
_FLAG_NOTIFY = NOTIFY << 1
_FLAG_RESPONSE = RESPONSE << 1
_FLAG_PUSH = PUSH << 1

notify_prefix = _make_prefix_cache(_FLAG_NOTIFY)
push_prefix = _make_prefix_cache(_FLAG_PUSH)
_request_route = _make_prefix_cache(_FLAG_REQUEST)  # flag + route; the id goes between them
_request_parts = {}                                  # route -> (flag byte, route field)
_RESPONSE_FLAG = _BYTE[_FLAG_RESPONSE]


def request_prefix(msg_id, route):
    """Flag + id + route of a REQUEST: everything before the body."""
    try:
        flag, field = _request_parts[route]
    except (KeyError, TypeError):
        head = _request_route(route)
        flag, field = head[:1], head[1:]
        if len(_request_parts) >= _ROUTE_CACHE_SIZE:
            _request_parts.clear()
        _request_parts[route] = flag, field
    return flag + encode_id(msg_id) + field


def response_prefix(msg_id):
    """Flag + id of a RESPONSE: everything before the body."""
    return _RESPONSE_FLAG + encode_id(msg_id)


def encode_request(msg_id, route, body):
    return request_prefix(msg_id, route) + body


def encode_notify(route, body):
    return notify_prefix(route) + body


def encode_response(msg_id, body):
    return _RESPONSE_FLAG + encode_id(msg_id) + body


def encode_push(route, body):
    return push_prefix(route) + body


def encode(mtype, msg_id, route, body):
    """Message bytes (no package header) for any of the four types."""
    if mtype == REQUEST:
        return encode_request(msg_id, route, body)
    if mtype == NOTIFY:
        return encode_notify(route, body)
    if mtype == RESPONSE:
        return encode_response(msg_id, body)
    if mtype == PUSH:
        return encode_push(route, body)
    raise ProtocolError("message type %r is not one of 0..3" % (mtype,))


def decode(data) -> Message:
    """Parse message bytes into `Message(type, id, route, body)`.

    `route` is a `str`, an `int` dictionary code, or `None` for a RESPONSE; `id` is 0 for NOTIFY
    and PUSH. Raises `ProtocolError` for anything malformed.
    """
    return _new_message(Message, decode_parts(data))


def decode_parts(data):
    """`decode` as a plain (type, id, route, body) tuple: the per-message hot path."""
    if data.__class__ is not bytes:
        data = bytes(data)
    n = len(data)
    if not n:
        raise ProtocolError("empty message: a DATA package needs at least a flag byte")
    flag = data[0]
    if flag & 0xF0:
        if flag & 0x10:
            raise ProtocolError("message flag 0x%02x has the gzip bit set; compression is not "
                                "supported" % flag)
        raise ProtocolError("message flag 0x%02x sets reserved bits 5-7" % flag)
    mtype = flag >> 1
    if mtype > PUSH:
        raise ProtocolError("message flag 0x%02x names unknown message type %d" % (flag, mtype))
    pos = 1
    msg_id = 0
    if mtype == REQUEST or mtype == RESPONSE:
        if n > 1 and data[1] < 0x80:
            msg_id = data[1]
            pos = 2
        elif n > 2 and data[2] < 0x80:          # ids 128..16383: most of a session's life
            msg_id = (data[1] & 0x7F) | (data[2] << 7)
            pos = 3
        else:
            msg_id, pos = decode_id(data, 1)
    if mtype == RESPONSE:
        if flag & _FLAG_ROUTE_CODE:
            raise ProtocolError("a RESPONSE carries no route, but flag 0x%02x sets the dictionary "
                                "bit" % flag)
        return RESPONSE, msg_id, None, data[pos:]
    if flag & _FLAG_ROUTE_CODE:
        if pos + 2 > n:
            raise ProtocolError("%s route code runs past the end of the message"
                                % _TYPE_NAMES[mtype])
        route = (data[pos] << 8) | data[pos + 1]
        pos += 2
    else:
        if pos >= n:
            raise ProtocolError("%s route length byte is missing" % _TYPE_NAMES[mtype])
        end = pos + 1 + data[pos]
        if end > n:
            raise ProtocolError("%s route of %d bytes runs past the end of the message (%d bytes)"
                                % (_TYPE_NAMES[mtype], data[pos], n))
        raw = data[pos + 1:end]
        try:
            route = raw.decode("utf-8")
        except UnicodeDecodeError:
            try:
                route = decode_utf8(raw)
            except ProtocolError:
                raise ProtocolError("%s route is not valid UTF-8" % _TYPE_NAMES[mtype]) \
                    from None
        pos = end
    return mtype, msg_id, route, data[pos:]


def type_name(mtype) -> Optional[str]:
    return _TYPE_NAMES[mtype] if 0 <= mtype <= 3 else None
