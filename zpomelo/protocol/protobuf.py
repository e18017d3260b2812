"""pomelo-protobuf: Pomelo's own protobuf dialect (docs/protocol.md section 7), NOT Google protobuf.

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

Each `Protobuf` compiles its protos once into per-message plans (protowire.Plan: dicts of
closures), so encoding and decoding do no string parsing at run time. Protos are accepted in the
raw JSON form above or in the parsed form Pomelo sends in its handshake (`{field: {option, type,
tag}, __messages, __tags}`); `parsed` is the latter, for the handshake reply.
"""
from zpomelo.errors import ConfigError, ProtocolError
from zpomelo.protocol.dictionary import js_key_order, js_md5_base64, js_stringify
from zpomelo.protocol.protowire import WIRE_TYPES, Plan, add_field, read_uvarint, uvarint

__all__ = ["Protobuf", "ProtobufPair", "uvarint", "read_uvarint"]

_OPTIONS = ("required", "optional", "repeated")
_MAX_TAG = (1 << 29) - 1


# ---- proto specs: one normal form for both JSON forms ------------------------------------

class _Spec:
    """One message definition: fields in file order and the messages nested inside it."""

    __slots__ = ("where", "fields", "nested")

    def __init__(self, where):
        self.where = where
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


def _spec_of(obj, where):
    if not isinstance(obj, dict):
        raise ConfigError("%s: a message must be a JSON object, got %r" % (where, obj))
    if "__tags" in obj or "__messages" in obj:
        return _spec_of_parsed(obj, where)
    spec = _Spec(where)
    for key, value in obj.items():
        words = key.split() if isinstance(key, str) else []
        if len(words) == 2 and words[0] == "message":
            spec.nested[words[1]] = _spec_of(value, "%s.%s" % (where, words[1]))
        elif len(words) == 3:
            spec.add_field(words[0], words[1], words[2], value)
        else:
            raise ConfigError("%s: %r is neither '<required|optional|repeated> <type> <name>' "
                              "nor 'message <Name>'" % (where, key), field=key)
    return spec


def _spec_of_parsed(obj, where):
    spec = _Spec(where)
    for key, value in obj.items():
        if key == "__tags":
            continue
        if key == "__messages":
            if not isinstance(value, dict):
                raise ConfigError("%s: __messages must be an object" % where)
            for name, nested in value.items():
                spec.nested[name] = _spec_of(nested, "%s.%s" % (where, name))
            continue
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            raise ConfigError("%s: field %r must be {option, type, tag}" % (where, key), field=key)
        spec.add_field(value.get("option"), value["type"], key, value.get("tag"))
    return spec


class _Compiler:
    """Turns specs into plans. A message type name is looked up exactly where pomelo-protobuf
    looks: among the messages nested in the message that uses it, then among the root-level
    `message <Name>` entries. (An enclosing message's nested types are NOT visible: Pomelo's
    clients would silently write broken data for them, so such protos are refused.)"""

    def __init__(self, root_messages):
        self.root_messages = root_messages     # type name -> _Spec
        self.plans = {}                         # id(spec) -> Plan

    def plan_of(self, spec):
        plan = self.plans.get(id(spec))
        if plan is not None:
            return plan
        plan = self.plans[id(spec)] = Plan(spec.where)
        for option, ptype, name, tag in spec.fields:
            sub = None
            if ptype not in WIRE_TYPES:
                nested = spec.nested.get(ptype) or self.root_messages.get(ptype)
                if nested is None:
                    raise ConfigError(
                        "%s: field %r has unknown type %r. Use one of %s, a message declared "
                        "inside %s, or a root-level 'message %s' entry (pomelo-protobuf looks "
                        "nowhere else)" % (spec.where, name, ptype, ", ".join(WIRE_TYPES),
                                           spec.where, ptype), field=name)
                sub = self.plan_of(nested)
            add_field(plan, option, ptype, name, tag, sub)
        return plan


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
