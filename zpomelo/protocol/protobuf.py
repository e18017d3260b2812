"""pomelo-protobuf: Pomelo's own protobuf dialect (PROTOCOL.md section 7), NOT Google protobuf.

Protos are JSON, one message per route, e.g.
    {"onMove": {"required uInt32 id": 1, "repeated Point path": 2,
                "message Point": {"required float x": 1, "required float y": 2}},
     "message Shared": {...}}                      # a root-level message any route may use

Wire rules, matching the pomelo-protobuf encoder byte for byte:
- key = varint((tag << 3) | wire type); wire types: uInt32/int32/sInt32/bool 0, double 1,
  string/message 2, float 5. int32 is zigzag-encoded exactly like sInt32. float/double are
  little-endian. There are no 64-bit types. `bool` (a varint 0/1) is a zpomelo addition.
- fields are written in the order of the object's keys; keys without a proto are skipped.
- repeated numbers: one key (with the element's wire type), a varint count, then the elements.
- repeated strings and messages: every element written with its own key + length + bytes.
- empty repeated fields are not written; a message is written as key + length + bytes.

Each `Protobuf` compiles its protos once into per-message plans (dicts of closures), so encoding
and decoding do no string parsing at run time. Protos are accepted in the raw JSON form above or
in the parsed form Pomelo sends in its handshake (`{field: {option, type, tag}, __messages,
__tags}`); `parsed` is the latter, for the handshake reply.
"""
import struct

from zpomelo.errors import ConfigError, ProtocolError
from zpomelo.protocol.dictionary import js_key_order, js_md5_base64, js_stringify
from zpomelo.protocol.message import decode_utf8

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
_WIRE_TYPES = {"uInt32": _VARINT, "int32": _VARINT, "sInt32": _VARINT, "bool": _VARINT,
               "double": _FIXED64, "float": _FIXED32, "string": _LENGTH}
_OPTIONS = ("required", "optional", "repeated")
_MAX_TAG = (1 << 29) - 1
_MAX_UINT = (1 << 64) - 1
_MAX_SINT = 1 << 63

# How a field is laid out on the wire.
_SINGLE = 0      # key + value
_COUNTED = 1     # repeated number: key + count + values
_EACH = 2        # repeated string/message: (key + length + bytes) per element

_BYTE = [bytes((i,)) for i in range(256)]
_pack_f = struct.Struct("<f").pack
_pack_d = struct.Struct("<d").pack
_unpack_f = struct.Struct("<f").unpack_from
_unpack_d = struct.Struct("<d").unpack_from


def uvarint(value):
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


def read_uvarint(data, pos, end):
    """Read a varint of at most 10 bytes before `end`; return (value, next_pos)."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise ProtocolError("protobuf varint runs past the end of the data")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtocolError("protobuf varint is longer than 10 bytes")


# ---- value checks (encoding) -------------------------------------------------------------

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


def _decode_utf8(raw):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return decode_utf8(raw)             # CESU-8 from Pomelo's JS client
    except ProtocolError:
        raise ProtocolError("protobuf string is not valid UTF-8") from None


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


# ---- per-type value readers: (data, pos, end) -> (value, next_pos) ------------------------

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
    return read_uvarint(data, pos, end)


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
        n, pos = read_uvarint(data, pos, end)
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
_MIN_ELEMENT_SIZE = {"float": 4, "double": 8}


# ---- proto specs: one normal form for both JSON forms ------------------------------------

class _Spec:
    """One message definition: fields in file order and the messages nested inside it."""

    __slots__ = ("where", "parent", "fields", "nested")

    def __init__(self, where, parent):
        self.where = where
        self.parent = parent  # the enclosing message, whose nested names are visible here
        self.fields = []      # (option, type, name, tag)
        self.nested = {}      # type name -> _Spec

    def add_field(self, option, ptype, name, tag):
        if option not in _OPTIONS:
            raise ConfigError("%s: field %r has option %r; expected required, optional or "
                              "repeated" % (self.where, name, option), field=name)
        if isinstance(tag, bool) or not isinstance(tag, int) or not 1 <= tag <= _MAX_TAG:
            raise ConfigError("%s: field %r has tag %r; expected an integer in 1..%d"
                              % (self.where, name, tag, _MAX_TAG), field=name)
        for _, _, other_name, other_tag in self.fields:
            if other_tag == tag or other_name == name:
                raise ConfigError("%s: field %r (tag %d) repeats the name or tag of field %r"
                                  % (self.where, name, tag, other_name), field=name)
        self.fields.append((option, ptype, name, tag))

    def to_parsed(self):
        """Pomelo's parsed form (what protobuf.parse() returns and the handshake carries)."""
        out = {name: {"option": option, "type": ptype, "tag": tag}
               for option, ptype, name, tag in self.fields}
        out["__messages"] = {name: spec.to_parsed() for name, spec in self.nested.items()}
        out["__tags"] = {str(tag): name for _, _, name, tag in sorted(self.fields,
                                                                      key=lambda f: f[3])}
        return out


def _spec_of(obj, where, parent=None):
    if not isinstance(obj, dict):
        raise ConfigError("%s: a message must be a JSON object, got %r" % (where, obj))
    if "__tags" in obj or "__messages" in obj:
        return _spec_of_parsed(obj, where, parent)
    spec = _Spec(where, parent)
    for key, value in obj.items():
        words = key.split() if isinstance(key, str) else []
        if len(words) == 2 and words[0] == "message":
            spec.nested[words[1]] = _spec_of(value, "%s.%s" % (where, words[1]), spec)
        elif len(words) == 3:
            spec.add_field(words[0], words[1], words[2], value)
        else:
            raise ConfigError("%s: %r is neither '<required|optional|repeated> <type> <name>' "
                              "nor 'message <Name>'" % (where, key), field=key)
    return spec


def _spec_of_parsed(obj, where, parent):
    spec = _Spec(where, parent)
    for key, value in obj.items():
        if key == "__tags":
            continue
        if key == "__messages":
            if not isinstance(value, dict):
                raise ConfigError("%s: __messages must be an object" % where)
            for name, nested in value.items():
                spec.nested[name] = _spec_of(nested, "%s.%s" % (where, name), spec)
            continue
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            raise ConfigError("%s: field %r must be {option, type, tag}" % (where, key), field=key)
        spec.add_field(value.get("option"), value["type"], key, value.get("tag"))
    return spec


# ---- compiled plans ----------------------------------------------------------------------

class _Plan:
    """A compiled message: encode via `writers` by field name, decode via `readers` by key."""

    __slots__ = ("where", "writers", "readers", "required", "required_order", "tags")

    def __init__(self, where):
        self.where = where
        self.writers = {}     # name -> (layout, key bytes, value encoder | plan)
        self.readers = {}     # key int -> (name, layout, reader)
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
            writer = writers.get(name)
            if writer is None:
                continue
            if value is None:
                if name in self.required:
                    raise ProtocolError("%s: required field %r is missing" % (self.where, name))
                continue
            layout, key, enc = writer
            if layout == _SINGLE:
                out += key
                out += enc(value)
                continue
            if not isinstance(value, (list, tuple)):
                raise ProtocolError("%s: repeated field %r needs a list, got %r"
                                    % (self.where, name, type(value).__name__))
            if not value:
                continue
            if layout == _COUNTED:
                out += key
                out += uvarint(len(value))
                for item in value:
                    out += enc(item)
            else:
                for item in value:
                    out += key
                    out += enc(item)
        return out

    def decode(self, data, pos, end):
        msg = {}
        readers = self.readers
        while pos < end:
            b = data[pos]
            if b < 0x80:
                key = b
                pos += 1
            else:
                key, pos = read_uvarint(data, pos, end)
            reader = readers.get(key)
            if reader is None:
                raise self._bad_key(key)
            name, layout, read = reader
            if layout == _SINGLE:
                msg[name], pos = read(data, pos, end)
            elif layout == _EACH:
                value, pos = read(data, pos, end)
                items = msg.get(name)
                if items is None:
                    msg[name] = [value]
                else:
                    items.append(value)
            else:
                count, pos = _read_uint(data, pos, end)
                if count > end - pos:       # every element takes at least one byte
                    raise ProtocolError("%s: repeated field %r claims %d elements but only %d "
                                        "bytes remain" % (self.where, name, count, end - pos))
                items = msg.get(name)
                if items is None:
                    items = msg[name] = []
                append = items.append
                for _ in range(count):
                    value, pos = read(data, pos, end)
                    append(value)
        return msg

    def _bad_key(self, key):
        tag, wire = key >> 3, key & 7
        name = self.tags.get(tag)
        if name is None:
            return ProtocolError("%s: unknown protobuf tag %d" % (self.where, tag))
        return ProtocolError("%s: field %r (tag %d) arrived with wire type %d, which does not "
                             "match its declared type" % (self.where, name, tag, wire))


def _message_writer(plan):
    def enc(value):
        body = plan.encode(value)
        return uvarint(len(body)) + body
    return enc


def _message_reader(plan):
    decode = plan.decode

    def read(data, pos, end):
        pos, stop = _read_length(data, pos, end)
        value = decode(data, pos, stop)
        return value, stop
    return read


def _string_writer(field):
    def enc(value):
        raw = _utf8(value, field)
        return uvarint(len(raw)) + raw
    return enc


class _Compiler:
    """Turns specs into plans; a message type name is looked up in the message itself, then in
    each enclosing message, then among the root-level `message <Name>` entries (pomelo-protobuf
    looks only in the message itself and at the root)."""

    def __init__(self, root_messages):
        self.root_messages = root_messages     # type name -> _Spec
        self.plans = {}                         # id(spec) -> _Plan

    def plan_of(self, spec):
        plan = self.plans.get(id(spec))
        if plan is not None:
            return plan
        plan = self.plans[id(spec)] = _Plan(spec.where)
        required = []
        for option, ptype, name, tag in spec.fields:
            wire = _WIRE_TYPES.get(ptype)
            if wire is None:
                nested = self._resolve(ptype, spec)
                if nested is None:
                    raise ConfigError("%s: field %r has unknown type %r (types: %s, or a message "
                                      "name)" % (spec.where, name, ptype, ", ".join(_WIRE_TYPES)),
                                      field=name)
                sub = self.plan_of(nested)
                enc, read, wire = _message_writer(sub), _message_reader(sub), _LENGTH
                layout = _EACH if option == "repeated" else _SINGLE
            elif ptype == "string":
                enc, read = _string_writer(name), _read_string
                layout = _EACH if option == "repeated" else _SINGLE
            else:
                enc, read = _number_encoder(ptype, name), _NUMBER_READERS[ptype]
                layout = _COUNTED if option == "repeated" else _SINGLE
            key = (tag << 3) | wire
            plan.writers[name] = (layout, uvarint(key), enc)
            plan.readers[key] = (name, layout, read)
            plan.tags[tag] = name
            if option == "required":
                required.append(name)
        plan.required = frozenset(required)
        plan.required_order = tuple(required)
        return plan

    def _resolve(self, ptype, spec):
        while spec is not None:
            found = spec.nested.get(ptype)
            if found is not None:
                return found
            spec = spec.parent
        return self.root_messages.get(ptype)


class Protobuf:
    """One direction's protos (server->client or client->server), compiled once."""

    def __init__(self, protos=None):
        protos = {} if protos is None else protos
        if not isinstance(protos, dict):
            raise ConfigError("protos must be a JSON object of route -> message, got %r"
                              % type(protos).__name__)
        specs = {}
        root_messages = {}
        routes = []
        for key, value in protos.items():
            words = key.split() if isinstance(key, str) else ()
            if len(words) == 2 and words[0] == "message":
                specs[key] = root_messages[words[1]] = _spec_of(value, words[1])
            else:
                specs[key] = _spec_of(value, key)
                routes.append(key)
        compiler = _Compiler(root_messages)
        for spec in specs.values():
            compiler.plan_of(spec)              # root messages too: their errors show at once
        self._plans = {key: compiler.plan_of(specs[key]) for key in routes}
        self.parsed = js_key_order({key: spec.to_parsed() for key, spec in specs.items()})

    @property
    def routes(self):
        return list(self._plans)

    def has(self, route):
        return route in self._plans

    def __contains__(self, route):
        return route in self._plans

    def encode(self, route, obj):
        plan = self._plans.get(route)
        if plan is None:
            raise ProtocolError("no protobuf protos for route %r" % (route,))
        try:
            return bytes(plan.encode(obj))
        except RecursionError:
            raise ProtocolError("%s: message nests too deeply to encode" % (route,)) from None

    def decode(self, route, data):
        plan = self._plans.get(route)
        if plan is None:
            raise ProtocolError("no protobuf protos for route %r" % (route,))
        if data.__class__ is not bytes:
            data = bytes(data)
        try:
            return plan.decode(data, 0, len(data))
        except RecursionError:
            raise ProtocolError("%s: protobuf data nests too deeply" % (route,)) from None


class ProtobufPair:
    """Both directions plus the version a client caches, as Pomelo's protobuf component."""

    def __init__(self, server_protos=None, client_protos=None, version=None):
        self.server = Protobuf(server_protos)
        self.client = Protobuf(client_protos)
        if not version:
            # Pomelo: md5 of JSON.stringify(parsed client) + JSON.stringify(parsed server).
            version = js_md5_base64(js_stringify(self.client.parsed) +
                                    js_stringify(self.server.parsed))
        self.version = version
        self._full_sys = {"protos": {"server": self.server.parsed, "client": self.client.parsed,
                                     "version": version},
                          "useProto": True}

    def handshake_sys(self, client_version=None):
        """Fields to merge into the handshake reply's `sys`; protos only when versions differ."""
        if client_version and client_version == self.version:
            return {"useProto": True}
        return dict(self._full_sys)
