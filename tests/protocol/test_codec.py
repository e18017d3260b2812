"""ServerCodec / ClientCodec: dictionary + protobuf + JSON over whole DATA packages."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zpomelo.errors import BodyError, ProtocolError
from zpomelo.protocol import message, package
from zpomelo.protocol.codec import ClientCodec, ServerCodec
from zpomelo.protocol.dictionary import RouteDictionary
from zpomelo.protocol.message import NOTIFY, PUSH, REQUEST, RESPONSE
from zpomelo.protocol.package import PackageDecoder
from zpomelo.protocol.protobuf import ProtobufPair

HANDLERS = ["area.playerHandler.move", "chat.chatHandler.send", "connector.entryHandler.entry"]
SERVER_PROTOS = {"area.playerHandler.move": {"required uInt32 ok": 1},
                 "onMove": {"required uInt32 id": 1, "repeated sInt32 xy": 2}}
CLIENT_PROTOS = {"area.playerHandler.move": {"required sInt32 x": 1, "required sInt32 y": 2}}


def body_of(data):
    [(ptype, body)] = PackageDecoder().feed(data)
    assert ptype == package.DATA
    return body


@pytest.fixture
def pair():
    dictionary = RouteDictionary(HANDLERS, ["onChat", "onMove"])
    protobuf = ProtobufPair(SERVER_PROTOS, CLIENT_PROTOS)
    server = ServerCodec(dictionary, protobuf)
    client = ClientCodec()
    client.apply_handshake(dict(dictionary.handshake_sys(None), **protobuf.handshake_sys(None)))
    return server, client


def test_json_request_uses_dictionary_code(pair):
    server, client = pair
    data = client.encode_request(5, "chat.chatHandler.send", {"content": "hé"})
    body = body_of(data)
    assert body[0] == 0x01                          # request + dictionary code
    assert message.decode(body).route == 2
    assert server.decode(body) == (REQUEST, 5, "chat.chatHandler.send", {"content": "hé"})
    assert "hé".encode("utf-8") in body             # ensure_ascii=False


def test_notify_and_unknown_route_uses_string(pair):
    server, client = pair
    body = body_of(client.encode_notify("chat.other.route", {}))
    assert body[0] == 0x02
    assert server.decode(body) == (NOTIFY, 0, "chat.other.route", {})


def test_protobuf_request_and_response_use_the_route_protos(pair):
    server, client = pair
    body = body_of(client.encode_request(9, "area.playerHandler.move", {"x": -1, "y": 2}))
    assert body == b"\x01\x09\x00\x01" + bytes.fromhex("08011004")
    assert server.decode(body) == (REQUEST, 9, "area.playerHandler.move", {"x": -1, "y": 2})
    reply = server.encode_response(9, "area.playerHandler.move", {"ok": 1})
    assert body_of(reply) == b"\x04\x09\x08\x01"
    assert client.decode(body_of(reply)) == (RESPONSE, 9, "area.playerHandler.move", {"ok": 1})
    assert server.uses_protobuf("area.playerHandler.move")
    assert not server.uses_protobuf("chat.chatHandler.send")


def test_json_response_needs_no_route(pair):
    server, client = pair
    client.encode_request(3, "connector.entryHandler.entry", {"uid": "u"})
    reply = server.encode_response(3, "connector.entryHandler.entry", {"code": 200})
    assert client.decode(body_of(reply)) == (RESPONSE, 3, None, {"code": 200})
    raw = server.encode_response_raw(3, b'{"code":200}')
    assert raw == reply


def test_pushes_json_and_protobuf(pair):
    server, client = pair
    chat = server.encode_push("onChat", {"msg": "hi"})
    assert body_of(chat)[:3] == b"\x07\x00\x04"     # push + code 4
    assert client.decode(body_of(chat)) == (PUSH, 0, "onChat", {"msg": "hi"})
    move = server.encode_push("onMove", {"id": 1, "xy": [3, -4]})
    assert client.decode(body_of(move)) == (PUSH, 0, "onMove", {"id": 1, "xy": [3, -4]})
    body = server.encode_body("onMove", {"id": 1, "xy": [3, -4]})
    assert server.encode_push_raw("onMove", body) == move
    other = server.encode_push("onOther", {"a": [1, None]})
    assert client.decode(body_of(other)) == (PUSH, 0, "onOther", {"a": [1, None]})


def test_bad_json_body_raises_body_error_with_id_and_route(pair):
    server, _ = pair
    for body in (b"{", b"\xff", b"[1,2]", b'"x"', b"[" * 50000):
        data = message.encode_request(77, "chat.chatHandler.send", body)
        with pytest.raises(BodyError) as info:
            server.decode(data)
        assert (info.value.msg_id, info.value.route) == (77, "chat.chatHandler.send")
        assert isinstance(info.value, ProtocolError)


def test_empty_json_body_is_an_empty_dict(pair):
    server, _ = pair
    assert server.decode(message.encode_notify("a.b.c", b"")) == (NOTIFY, 0, "a.b.c", {})


def test_bad_protobuf_body_raises_body_error(pair):
    server, _ = pair
    data = message.encode_request(8, 1, b"\x0a\x01")     # code 1 = area.playerHandler.move
    with pytest.raises(BodyError, match="wire type") as info:
        server.decode(data)
    assert (info.value.msg_id, info.value.route) == (8, "area.playerHandler.move")


def test_unknown_dictionary_code_is_a_protocol_error(pair):
    server, client = pair
    with pytest.raises(ProtocolError, match="route code 99 is not in the route dictionary"):
        server.decode(message.encode_request(1, 99, b"{}"))
    with pytest.raises(ProtocolError, match="code 1 is not in the route dictionary"):
        ServerCodec().decode(message.encode_request(1, 1, b"{}"))
    with pytest.raises(ProtocolError, match="push route code 500"):
        client.decode(message.encode_push(500, b"{}"))


def test_wrong_direction_messages(pair):
    server, client = pair
    with pytest.raises(ProtocolError, match="only REQUEST or NOTIFY"):
        server.decode(message.encode_push("onChat", b"{}"))
    with pytest.raises(ProtocolError, match="only RESPONSE or PUSH"):
        client.decode(message.encode_request(1, "a.b.c", b"{}"))


def test_unencodable_response_is_a_protocol_error(pair):
    server, _ = pair
    with pytest.raises(ProtocolError, match="not JSON-encodable"):
        server.encode_response(1, "chat.chatHandler.send", {"x": {1, 2}})
    with pytest.raises(ProtocolError, match="required field 'ok'"):
        server.encode_response(1, "area.playerHandler.move", {})
    with pytest.raises(ProtocolError, match="protocol maximum"):
        server.encode_response_raw(1, b"x" * (1 << 24))


def test_client_keeps_tables_when_server_saw_cached_versions(pair):
    server, client = pair
    versions = client.cached_versions()
    assert set(versions) == {"dictVersion", "protoVersion"}
    fresh = ClientCodec()
    fresh.apply_handshake(dict(server.dictionary.handshake_sys(None),
                               **server.protobuf.handshake_sys(None)))
    fresh.apply_handshake({"useDict": True, "useProto": True})      # cached: nothing new
    assert fresh.route_to_code == client.route_to_code
    assert body_of(fresh.encode_notify("onChat", {}))[0] == 0x03
    fresh.apply_handshake({"heartbeat": 3})                          # neither feature on
    assert fresh.route_to_code == {} and fresh.cached_versions() == {}
    assert body_of(fresh.encode_notify("onChat", {}))[0] == 0x02


def test_client_forgets_and_rejects_bad_handshake_tables():
    client = ClientCodec()
    for sys in ({"useDict": True, "routeToCode": {"a": "1"}}, {"useProto": True, "protos": 5},
                {"useProto": True, "protos": {"server": {"r": {"bad": 1}}}}, []):
        with pytest.raises(ProtocolError):
            client.apply_handshake(sys)
    client.apply_handshake({"useProto": True, "protos": {"server": SERVER_PROTOS, "version": "v"}})
    client.encode_request(4, "area.playerHandler.move", {"x": 1, "y": 1})
    client.forget(4)
    reply = ServerCodec().encode_response_raw(4, b'{"code":500}')
    assert client.decode(body_of(reply)) == (RESPONSE, 4, None, {"code": 500})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 53, 2 ** 53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=6)
routes = st.text(min_size=1, max_size=60).filter(lambda r: len(r.encode("utf-8")) <= 255)


@settings(max_examples=150)
@given(st.integers(1, 2 ** 32 - 1), st.sampled_from(HANDLERS[1:]) | routes, json_objects)
def test_json_round_trips_through_both_codecs(msg_id, route, obj):
    dictionary = RouteDictionary(HANDLERS, ["onChat"])
    server = ServerCodec(dictionary)
    client = ClientCodec()
    client.apply_handshake(dictionary.handshake_sys())
    assert server.decode(body_of(client.encode_request(msg_id, route, obj))) == \
        (REQUEST, msg_id, route, obj)
    assert server.decode(body_of(client.encode_notify(route, obj))) == (NOTIFY, 0, route, obj)
    assert client.decode(body_of(server.encode_response(msg_id, route, obj)))[3] == obj
    assert client.decode(body_of(server.encode_push(route, obj))) == (PUSH, 0, route, obj)


def test_server_handshake_sys_merges_dictionary_and_protobuf(pair):
    server, client = pair
    full = server.handshake_sys({})
    assert list(full) == ["dict", "routeToCode", "codeToRoute", "dictVersion", "useDict",
                          "protos", "useProto"]
    cached = server.handshake_sys({"dictVersion": client.dict_version,
                                   "protoVersion": client.proto_version})
    assert cached == {"useDict": True, "useProto": True}
    assert ServerCodec().handshake_sys({"dictVersion": "x"}) == {}


def cesu8(text):
    """How Pomelo's browser client (Protocol.strencode) writes text: each UTF-16 unit as UTF-8."""
    raw = text.encode("utf-16-be")
    units = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]
    return "".join(map(chr, units)).encode("utf-8", "surrogatepass")


def test_cesu8_from_pomelo_browser_client_is_accepted():
    body = cesu8('{"content":"hi \U0001F600 é"}')
    assert body != '{"content":"hi \U0001F600 é"}'.encode("utf-8")
    data = message.encode_request(1, "chat.chatHandler.send", body)
    assert ServerCodec().decode(data) == (REQUEST, 1, "chat.chatHandler.send",
                                         {"content": "hi \U0001F600 é"})
    route = cesu8("on\U0001F600")
    assert message.decode(b"\x06" + bytes([len(route)]) + route + b"{}").route == "on\U0001F600"
    with pytest.raises(BodyError, match="not valid UTF-8"):
        ServerCodec().decode(message.encode_notify("a.b.c", b'{"a":"\xed\xa0\xbd"}'))  # lone half


def test_json_bodies_with_whitespace_and_trailing_garbage():
    server = ServerCodec()
    assert server.decode(message.encode_notify("a.b.c", b' {"a": 1}\n'))[3] == {"a": 1}
    with pytest.raises(BodyError, match="Extra data"):
        server.decode(message.encode_request(2, "a.b.c", b'{"a":1} x'))
