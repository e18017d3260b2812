"""pomelo-protobuf on the wire: varints, value readers and compiled per-message plans.

`protobuf.py` parses protos and builds `Plan`s with `add_field`; everything that runs per
message lives here and in `protoencode.py` (the writing half). A plan holds, per field, one
writer `write(out, value)` (by field name) and one reader `read(data, pos, end, msg) -> pos` (by
key), with the usual value types handled inline so that a field costs one Python call each way.
"""
import struct

from zpomelo.errors import ProtocolError
from zpomelo.protocol import varint
from zpomelo.protocol.message import decode_utf8
from zpomelo.protocol.protoencode import (
    _counted_writer, _each_writer, _message_encoder, _number_encoder, _single_writer,
    _string_encoder)

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
WIRE_TYPES = {"uInt32": VARINT, "int32": VARINT, "sInt32": VARINT, "bool": VARINT,
              "double": FIXED64, "float": FIXED32, "string": LENGTH}

_unpack_f = struct.Struct("<f").unpack_from
_unpack_d = struct.Struct("<d").unpack_from
_read_varint = varint.read


uvarint = varint.encode
MAX_VARINT_BYTES = 10


def read_uvarint(data, pos, end):
    """Read a protobuf varint (at most 10 bytes) before `end`; return (value, next_pos)."""
    return _read_varint(data, pos, end, MAX_VARINT_BYTES, "protobuf")


# ---- per-type value readers: (data, pos, end) -> (value, next_pos) ------------------------

def _decode_utf8(raw):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return decode_utf8(raw)             # CESU-8 from Pomelo's JS client
    except ProtocolError:
        raise ProtocolError("protobuf string is not valid UTF-8") from None


def _read_uint(data, pos, end):
    if pos + 1 < end:                   # one- and two-byte varints without a loop
        b = data[pos]
        if b < 0x80:
            return b, pos + 1
        c = data[pos + 1]
        if c < 0x80:
            return (b & 0x7F) | (c << 7), pos + 2
    elif pos < end and data[pos] < 0x80:
        return data[pos], pos + 1
    return _read_varint(data, pos, end, MAX_VARINT_BYTES, "protobuf")


def _read_sint(data, pos, end):
    n, pos = _read_uint(data, pos, end)
    return (n >> 1) ^ -(n & 1), pos


def _read_bool(data, pos, end):
    n, pos = _read_uint(data, pos, end)
    return n != 0, pos


def _read_float(data, pos, end):
    if pos + 4 > end:
        raise ProtocolError("protobuf float runs past the end of the data")
    return _unpack_f(data, pos)[0], pos + 4


def _read_double(data, pos, end):
    if pos + 8 > end:
        raise ProtocolError("protobuf double runs past the end of the data")
    return _unpack_d(data, pos)[0], pos + 8


def _read_length(data, pos, end):
    if pos < end and data[pos] < 0x80:
        n = data[pos]
        pos += 1
    else:
        n, pos = _read_varint(data, pos, end, MAX_VARINT_BYTES, "protobuf")
    stop = pos + n
    if stop > end:
        raise ProtocolError("protobuf length-delimited field of %d bytes runs past the end of "
                            "the data" % n)
    return pos, stop


def _read_string(data, pos, end):
    pos, stop = _read_length(data, pos, end)
    return _decode_utf8(data[pos:stop]), stop


_NUMBER_READERS = {"uInt32": _read_uint, "int32": _read_sint, "sInt32": _read_sint,
                   "bool": _read_bool, "float": _read_float, "double": _read_double}


# ---- compiled plans ----------------------------------------------------------------------

class Plan:
    """A compiled message: per field, one writer `write(out, value)` (by name) and one reader
    `read(data, pos, end, msg) -> pos` (by key), so each field costs one call each way."""

    __slots__ = ("where", "writers", "readers", "required", "required_order", "tags")

    def __init__(self, where):
        self.where = where
        self.writers = {}     # name -> write(out: bytearray, value)
        self.readers = {}     # key int -> read(data, pos, end, msg) -> pos
        self.required = frozenset()
        self.required_order = ()
        self.tags = {}        # tag -> name, for error messages

    def encode(self, obj):
        if not isinstance(obj, dict):
            raise ProtocolError("%s: protobuf message must be a dict, got %r"
                                % (self.where, type(obj).__name__))
        if not obj.keys() >= self.required:
            missing = [name for name in self.required_order if name not in obj]
            raise ProtocolError("%s: required field %r is missing" % (self.where, missing[0]))
        out = bytearray()
        writers = self.writers
        for name, value in obj.items():
            write = writers.get(name)
            if write is None:
                continue
            if value is None:
                if name in self.required:
                    raise ProtocolError("%s: required field %r is missing" % (self.where, name))
                continue
            write(out, value)
        return out

    def decode(self, data, pos, end):
        msg = {}
        readers = self.readers
        while pos < end:
            key = data[pos]
            if key < 0x80:
                pos += 1
            else:
                key, pos = _read_varint(data, pos, end, MAX_VARINT_BYTES, "protobuf")
            read = readers.get(key)
            if read is None:
                raise self._bad_key(key)
            pos = read(data, pos, end, msg)
        return msg

    def _bad_key(self, key):
        tag, wire = key >> 3, key & 7
        name = self.tags.get(tag)
        if name is None:
            return ProtocolError("%s: unknown protobuf tag %d" % (self.where, tag))
        return ProtocolError("%s: field %r (tag %d) arrived with wire type %d, which does not "
                             "match its declared type" % (self.where, name, tag, wire))


def _message_reader(plan):
    decode = plan.decode

    def read(data, pos, end):
        pos, stop = _read_length(data, pos, end)
        return decode(data, pos, stop), stop
    return read


# ---- field readers: read(data, pos, end, msg) -> pos stores the field in msg ---------------

def _single_reader(read_value, ptype, name):
    # Common cases inline (one call per field); the rest through the value reader.
    if ptype == "uInt32":
        def read(data, pos, end, msg):
            if pos < end and data[pos] < 0x80:
                msg[name] = data[pos]
                return pos + 1
            msg[name], pos = _read_uint(data, pos, end)
            return pos
    elif ptype in ("int32", "sInt32"):
        def read(data, pos, end, msg):
            if pos < end and data[pos] < 0x80:
                n = data[pos]
                msg[name] = (n >> 1) ^ -(n & 1)
                return pos + 1
            msg[name], pos = _read_sint(data, pos, end)
            return pos
    elif ptype == "float" or ptype == "double":
        size = 4 if ptype == "float" else 8
        unpack = _unpack_f if ptype == "float" else _unpack_d

        def read(data, pos, end, msg):
            if pos + size > end:
                raise ProtocolError("protobuf %s runs past the end of the data" % ptype)
            msg[name] = unpack(data, pos)[0]
            return pos + size
    elif ptype == "string":
        def read(data, pos, end, msg):
            if pos < end and data[pos] < 0x80:
                stop = pos + 1 + data[pos]
                if stop <= end:
                    raw = data[pos + 1:stop]
                    try:
                        msg[name] = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        msg[name] = _decode_utf8(raw)
                    return stop
            msg[name], pos = _read_string(data, pos, end)
            return pos
    else:
        def read(data, pos, end, msg):
            msg[name], pos = read_value(data, pos, end)
            return pos
    return read


def _each_reader(read_value, name):
    def read(data, pos, end, msg):
        value, pos = read_value(data, pos, end)
        items = msg.get(name)
        if items is None:
            msg[name] = [value]
        else:
            items.append(value)
        return pos
    return read


def _counted_reader(read_value, where, name):
    def read(data, pos, end, msg):
        count, pos = _read_uint(data, pos, end)
        if count > end - pos:       # every element takes at least one byte
            raise ProtocolError("%s: repeated field %r claims %d elements but only %d bytes "
                                "remain" % (where, name, count, end - pos))
        items = msg.get(name)
        if items is None:
            items = msg[name] = []
        append = items.append
        for _ in range(count):
            value, pos = read_value(data, pos, end)
            append(value)
        return pos
    return read


# ---- building a plan ---------------------------------------------------------------------

def add_field(plan, option, ptype, name, tag, sub=None):
    """Compile one field into `plan`; `sub` is the plan of a message-typed field."""
    if sub is not None:
        enc, read_value, wire = _message_encoder(sub), _message_reader(sub), LENGTH
    elif ptype == "string":
        enc, read_value, wire = _string_encoder(name), _read_string, LENGTH
    else:
        enc, read_value, wire = _number_encoder(ptype, name), _NUMBER_READERS[ptype], \
            WIRE_TYPES[ptype]
    key = (tag << 3) | wire
    key_bytes = uvarint(key)
    if option != "repeated":
        plan.writers[name] = _single_writer(key_bytes, enc, ptype, name)
        plan.readers[key] = _single_reader(read_value, ptype, name)
    elif wire == LENGTH:          # strings and messages: key + length + bytes each
        plan.writers[name] = _each_writer(key_bytes, enc, plan.where, name)
        plan.readers[key] = _each_reader(read_value, name)
    else:                         # numbers: key + count + values
        plan.writers[name] = _counted_writer(key_bytes, enc, plan.where, name)
        plan.readers[key] = _counted_reader(read_value, plan.where, name)
    plan.tags[tag] = name
    if option == "required":
        plan.required = plan.required | {name}
        plan.required_order += (name,)
