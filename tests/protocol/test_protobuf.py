"""pomelo-protobuf: round trips, wire layout, compile errors and malformed data."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zpomelo.errors import ConfigError, ProtocolError
from zpomelo.protocol.protobuf import Protobuf, ProtobufPair, uvarint

PROTOS = {
    "all.types.msg": {
        "required uInt32 u": 1,
        "optional int32 i": 2,
        "optional sInt32 s": 3,
        "optional float f": 4,
        "optional double d": 5,
        "optional string str": 6,
        "optional bool b": 7,
        "optional Inner inner": 8,
        "repeated uInt32 us": 9,
        "repeated sInt32 ss": 10,
        "repeated float fs": 11,
        "repeated double ds": 12,
        "repeated string strs": 13,
        "repeated Inner inners": 14,
        "repeated bool bs": 15,
        "optional Tree tree": 16,
        "optional uInt32 far": 100000,
        "message Inner": {"required string name": 1, "optional sInt32 v": 2},
    },
    "message Tree": {"optional uInt32 value": 1, "repeated Tree kids": 2},
}
CODEC = Protobuf(PROTOS)

uint = st.integers(0, 2 ** 32 - 1)
sint = st.integers(-2 ** 31, 2 ** 31 - 1)
f32 = st.floats(width=32, allow_nan=False)
f64 = st.floats(allow_nan=False)
text = st.text(max_size=40)
inner = st.fixed_dictionaries({"name": text}, optional={"v": sint})
tree = st.recursive(st.fixed_dictionaries({}, optional={"value": uint}),
                    lambda kids: st.fixed_dictionaries({}, optional={
                        "value": uint, "kids": st.lists(kids, min_size=1, max_size=3)}),
                    max_leaves=8)
message = st.fixed_dictionaries({"u": uint}, optional={
    "i": sint, "s": sint, "f": f32, "d": f64, "str": text, "b": st.booleans(), "inner": inner,
    "us": st.lists(uint, min_size=1), "ss": st.lists(sint, min_size=1),
    "fs": st.lists(f32, min_size=1), "ds": st.lists(f64, min_size=1),
    "strs": st.lists(text, min_size=1), "inners": st.lists(inner, min_size=1, max_size=4),
    "bs": st.lists(st.booleans(), min_size=1), "tree": tree, "far": uint,
})


@settings(max_examples=200)
@given(message)
def test_round_trip(obj):
    data = CODEC.encode("all.types.msg", obj)
    assert CODEC.decode("all.types.msg", data) == obj


@given(message)
def test_field_order_follows_the_object(obj):
    # pomelo-protobuf writes fields in the object's key order; reversed keys give other bytes
    # but the same object back.
    reversed_obj = dict(reversed(list(obj.items())))
    assert CODEC.decode("all.types.msg", CODEC.encode("all.types.msg", reversed_obj)) == obj


def test_wire_layout_of_each_kind():
    codec = Protobuf({"r": {"optional float f": 1, "optional double d": 2, "repeated string s": 3,
                            "repeated Item items": 4, "optional int32 i": 5, "optional bool b": 6,
                            "repeated float fs": 7,
                            "message Item": {"required uInt32 n": 1}}})
    assert codec.encode("r", {"f": 1.0}).hex() == "0d0000803f"               # wire 5, LE
    assert codec.encode("r", {"d": 1.0}).hex() == "11000000000000f03f"       # wire 1, LE
    # repeated strings: each element with its own key (pomelo-protobuf does not count-prefix them)
    assert codec.encode("r", {"s": ["a", "bc"]}).hex() == "1a01611a026263"
    # repeated messages: key + length + bytes per element
    assert codec.encode("r", {"items": [{"n": 1}, {"n": 2}]}).hex() == "22020801" "22020802"
    assert codec.encode("r", {"i": -1}).hex() == "2801"                      # int32 is zigzag
    assert codec.encode("r", {"b": True}).hex() == "3001"
    assert codec.encode("r", {"fs": [1.0, 2.0]}).hex() == "3d02" + "0000803f" + "00000040"
    assert codec.encode("r", {"s": [], "fs": [], "f": None}) == b""          # empty: nothing


def test_unknown_object_keys_are_skipped_and_repeats_accumulate():
    codec = Protobuf({"r": {"repeated uInt32 xs": 1, "repeated string s": 2}})
    assert codec.encode("r", {"nope": 1, "xs": [1]}) == bytes.fromhex("080101")
    # two runs of the same repeated field append to one list
    assert codec.decode("r", bytes.fromhex("080101" "08020203" "120178")) == \
        {"xs": [1, 2, 3], "s": ["x"]}


def test_message_types_resolve_where_pomelo_protobuf_looks():
    codec = Protobuf({
        "r": {"required A a": 1,
              "message A": {"required B b": 1, "message B": {"required Shared s": 1}}},
        "message Shared": {"required string x": 1},
    })
    obj = {"a": {"b": {"s": {"x": "hi"}}}}
    assert codec.decode("r", codec.encode("r", obj)) == obj
    assert codec.routes == ["r"]
    assert codec.has("r") and not codec.has("message Shared") and "r" in codec
    # A sibling declared in the enclosing message is invisible to pomelo-protobuf: refused.
    with pytest.raises(ConfigError, match="unknown type 'B'.*nowhere else"):
        Protobuf({"r": {"required A a": 1, "message A": {"required B b": 1},
                        "message B": {"required uInt32 n": 1}}})


def test_parsed_form_round_trips():
    parsed = CODEC.parsed
    again = Protobuf(parsed)
    assert again.parsed == parsed
    obj = {"u": 5, "inner": {"name": "n"}, "tree": {"kids": [{"value": 1}]}}
    assert again.encode("all.types.msg", obj) == CODEC.encode("all.types.msg", obj)


def test_large_and_negative_numbers():
    codec = Protobuf({"r": {"optional uInt32 u": 1, "optional sInt32 s": 2}})
    for value in (2 ** 32 - 1, 2 ** 53, 2 ** 64 - 1):       # JS clients send beyond 2^32
        assert codec.decode("r", codec.encode("r", {"u": value})) == {"u": value}
    for value in (-2 ** 31, -2 ** 53, 2 ** 62):
        assert codec.decode("r", codec.encode("r", {"s": value})) == {"s": value}
    assert codec.encode("r", {"u": 3.0}) == codec.encode("r", {"u": 3})


@pytest.mark.parametrize("obj, match", [
    ({}, "required field 'u' is missing"),
    ({"u": None}, "required field 'u' is missing"),
    ({"u": -1}, "non-negative"),
    ({"u": 2 ** 64}, "non-negative"),
    ({"u": "7"}, "needs an integer"),
    ({"u": 1.5}, "needs an integer"),
    ({"u": 1, "s": 2 ** 63}, "out of range"),
    ({"u": 1, "f": "x"}, "needs a number"),
    ({"u": 1, "f": 1e39}, "does not fit in a float"),
    ({"u": 1, "str": 5}, "needs a string"),
    ({"u": 1, "str": "\ud800"}, "not valid UTF-8"),
    ({"u": 1, "us": 5}, "needs a list"),
    ({"u": 1, "inner": "x"}, "must be a dict"),
    ({"u": 1, "inner": {}}, "required field 'name'"),
])
def test_encode_rejects_bad_values(obj, match):
    with pytest.raises(ProtocolError, match=match):
        CODEC.encode("all.types.msg", obj)


def test_encode_unknown_route_and_non_dict():
    with pytest.raises(ProtocolError, match="no protobuf protos for route 'x'"):
        CODEC.encode("x", {})
    with pytest.raises(ProtocolError, match="no protobuf protos"):
        CODEC.decode("x", b"")
    with pytest.raises(ProtocolError, match="must be a dict"):
        CODEC.encode("all.types.msg", [1])


def test_self_referencing_object_is_rejected():
    loop = {}
    loop["kids"] = [loop]
    with pytest.raises(ProtocolError, match="too deeply"):
        CODEC.encode("all.types.msg", {"u": 1, "tree": loop})


@pytest.mark.parametrize("data, match", [
    ("a0 01 01", "unknown protobuf tag 20"),
    ("f8 ff 07 01", "unknown protobuf tag 16383"),
    ("0a 01", "'u' \\(tag 1\\) arrived with wire type 2"),  # wrong wire type
    ("0d 00 00 00 00", "wire type 5"),
    ("08", "varint runs past the end"),                      # truncated value
    ("08 80", "varint runs past the end"),
    ("08 ff ff ff ff ff ff ff ff ff ff 01", "longer than 10 bytes"),   # never-ending varint
    ("25 00 00 80", "float runs past the end"),
    ("29 00 00 00 00 00 00 f0", "double runs past the end"),
    ("32 05 61 62", "runs past the end"),                    # string longer than the data
    ("32 02 c3 28", "not valid UTF-8"),
    ("42 03 0a 05 61", "runs past the end"),                 # inner string past inner's end
    ("4a 01 01", "'us' \\(tag 9\\) arrived with wire type 2"),
    ("48 05 01", "claims 5 elements"),                       # repeated count past the end
    ("5d 02 00 00 80 3f", "float runs past the end"),
    ("80", "varint runs past the end"),                      # truncated key
])
def test_decode_rejects_malformed_data(data, match):
    with pytest.raises(ProtocolError, match=match):
        CODEC.decode("all.types.msg", bytes.fromhex(data.replace(" ", "")))


def test_decode_unknown_tag_inside_nested_message():
    with pytest.raises(ProtocolError, match="all.types.msg.Inner: unknown protobuf tag 3"):
        CODEC.decode("all.types.msg", bytes.fromhex("42021803"))


def test_deep_nesting_is_a_protocol_error_not_a_crash():
    data = b""
    for _ in range(3000):                       # Tree.kids inside Tree.kids inside ...
        data = b"\x12" + uvarint(len(data)) + data
    data = b"\x82\x01" + uvarint(len(data)) + data
    with pytest.raises(ProtocolError, match="too deeply"):
        CODEC.decode("all.types.msg", data)


def test_decode_joins_cesu8_surrogate_pairs_from_js_clients():
    # Pomelo's JS client encodes U+1F600 as two 3-byte surrogate sequences.
    cesu = "\U0001F600".encode("utf-16-be").decode("utf-16-be", "surrogatepass") \
        .encode("utf-8", "surrogatepass")
    codec = Protobuf({"r": {"required string s": 1}})
    assert codec.decode("r", b"\x0a" + bytes([len(cesu)]) + cesu) == {"s": "\U0001F600"}


def test_decode_does_not_check_required_fields_like_pomelo():
    assert CODEC.decode("all.types.msg", b"") == {}


@pytest.mark.parametrize("protos, match", [
    ({"r": {"required strin name": 1}}, "unknown type 'strin'"),
    ({"r": {"maybe string name": 1}}, "option 'maybe'"),
    ({"r": {"required string a": 1, "optional string b": 1}}, "repeats the name or tag"),
    ({"r": {"required string a": 0}}, "tag 0"),
    ({"r": {"required string a": "1"}}, "tag '1'"),
    ({"r": {"required string": 1}}, "neither"),
    ({"r": []}, "must be a JSON object"),
    ({"r": {"required Missing m": 1}}, "unknown type 'Missing'"),
    ({"message Bad": {"required Nope n": 1}}, "unknown type 'Nope'"),
    ([], "route -> message"),
])
def test_bad_protos_raise_config_error(protos, match):
    with pytest.raises(ConfigError, match=match):
        Protobuf(protos)


def test_pair_version_and_handshake_sys():
    pair = ProtobufPair({"onX": {"required string a": 1}}, {"a.b.c": {"required uInt32 n": 1}})
    full = pair.handshake_sys(None)
    assert list(full) == ["protos", "useProto"]
    assert full["protos"]["version"] == pair.version
    assert full["protos"]["server"] == pair.server.parsed
    assert full["protos"]["client"] == pair.client.parsed
    assert pair.handshake_sys(pair.version) == {"useProto": True}
    assert pair.handshake_sys("stale")["protos"]["version"] == pair.version
    assert ProtobufPair({"onX": {"required string a": 1}}).version != pair.version
    assert ProtobufPair(version="v7").version == "v7"
