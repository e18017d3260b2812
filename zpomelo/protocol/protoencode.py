"""pomelo-protobuf encoding: value checks, per-type value encoders and per-field writers.

The writing half of protowire: `protowire.add_field` compiles each field of a `Plan` into one
writer `write(out, value)` made here, with the usual value types handled inline so that a field
costs one Python call; anything unusual goes through the field's value encoder, which converts
the value or raises a ProtocolError that names the field.
"""
import struct

from zpomelo.errors import ProtocolError
from zpomelo.protocol import varint

_MAX_UINT = (1 << 64) - 1
_MAX_SINT = 1 << 63

_BYTE = [bytes((i,)) for i in range(256)]
_pack_f = struct.Struct("<f").pack
_pack_d = struct.Struct("<d").pack

uvarint = varint.encode


# ---- value checks -----------------------------------------------------------------------

def _as_int(value, field):
    if value.__class__ is int:
        return value
    if isinstance(value, int):          # bool, IntEnum
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ProtocolError("protobuf field %r needs an integer, got %r" % (field, value))


def _as_uint(value, field):
    value = _as_int(value, field)
    if not 0 <= value <= _MAX_UINT:
        raise ProtocolError("protobuf field %r (uInt32) needs a non-negative integer, got %r"
                            % (field, value))
    return value


def _zigzag(value, field):
    value = _as_int(value, field)
    if not -_MAX_SINT <= value < _MAX_SINT:
        raise ProtocolError("protobuf field %r: %r is out of range" % (field, value))
    return value << 1 if value >= 0 else ((-value) << 1) - 1


def _as_float(value, field):
    if isinstance(value, (int, float)):
        return value
    raise ProtocolError("protobuf field %r needs a number, got %r" % (field, value))


def _utf8(value, field):
    if value.__class__ is not str and not isinstance(value, str):
        raise ProtocolError("protobuf field %r needs a string, got %r" % (field, value))
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError("protobuf field %r holds a string that is not valid UTF-8"
                            % (field,)) from None


# ---- per-type value encoders: value -> bytes (no key) ------------------------------------

def _number_encoder(ptype, field):
    # Each encoder has a fast path for the plain value type; anything else goes through the
    # checking helpers, which either convert it or raise a ProtocolError that names the field.
    if ptype == "uInt32":
        def enc(value):
            if value.__class__ is int and 0 <= value <= _MAX_UINT:
                return _BYTE[value] if value < 0x80 else uvarint(value)
            return uvarint(_as_uint(value, field))
    elif ptype in ("int32", "sInt32"):
        def enc(value):
            if value.__class__ is int and -_MAX_SINT <= value < _MAX_SINT:
                return uvarint(value << 1 if value >= 0 else ((-value) << 1) - 1)
            return uvarint(_zigzag(value, field))
    elif ptype == "bool":
        def enc(value):
            return b"\x01" if value else b"\x00"
    else:
        pack = _pack_f if ptype == "float" else _pack_d

        def enc(value):
            if value.__class__ is float or value.__class__ is int:
                try:
                    return pack(value)
                except OverflowError:
                    raise ProtocolError("protobuf field %r: %r does not fit in a %s"
                                        % (field, value, ptype)) from None
            return pack(_as_float(value, field))
    return enc


def _message_encoder(plan):
    def enc(value):
        body = plan.encode(value)
        return uvarint(len(body)) + body
    return enc


def _string_encoder(field):
    def enc(value):
        raw = _utf8(value, field)
        return uvarint(len(raw)) + raw
    return enc


# ---- field writers: write(out, value) appends key + value ---------------------------------

def _single_writer(key, enc, ptype, field):
    # The usual value types are written inline (one call per field); anything unusual goes
    # through `enc`, which converts or raises a ProtocolError naming the field.
    if ptype in ("uInt32", "int32", "sInt32"):
        signed = ptype != "uInt32"

        def write(out, value):
            if value.__class__ is int and -_MAX_SINT <= value < _MAX_SINT:
                if signed:
                    value = value << 1 if value >= 0 else ((-value) << 1) - 1
                elif value < 0:
                    value = _as_uint(value, field)
                out += key
                if value < 0x80:
                    out.append(value)
                elif value < 0x4000:
                    out.append((value & 0x7F) | 0x80)
                    out.append(value >> 7)
                else:
                    out += uvarint(value)
            else:
                out += key
                out += enc(value)
    elif ptype == "float" or ptype == "double":
        pack = _pack_f if ptype == "float" else _pack_d

        def write(out, value):
            packed = None
            if value.__class__ is float:
                try:
                    packed = pack(value)
                except OverflowError:
                    pass
            out += key
            out += enc(value) if packed is None else packed
    elif ptype == "string":
        def write(out, value):
            out += key
            if value.__class__ is str and len(value) < 0x80 and value.isascii():
                out.append(len(value))
                out += value.encode("ascii")
            else:
                out += enc(value)
    else:
        def write(out, value):
            out += key
            out += enc(value)
    return write


def _list_check(value, where, field):
    if value.__class__ is not list and not isinstance(value, (list, tuple)):
        raise ProtocolError("%s: repeated field %r needs a list, got %r"
                            % (where, field, type(value).__name__))


def _counted_writer(key, enc, where, field):
    def write(out, value):
        _list_check(value, where, field)
        if value:
            out += key
            out += uvarint(len(value))
            for item in value:
                out += enc(item)
    return write


def _each_writer(key, enc, where, field):
    def write(out, value):
        _list_check(value, where, field)
        for item in value:
            out += key
            out += enc(item)
    return write
