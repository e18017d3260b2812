"""Byte-for-byte vectors: docs/protocol.md sections 6, 7 and 9, and vectors from Pomelo's own codecs."""
import json
import os

import pytest

from zpomelo.protocol import handshake, message, package
from zpomelo.protocol.codec import ClientCodec, ServerCodec
from zpomelo.protocol.dictionary import RouteDictionary, js_md5_base64, js_stringify
from zpomelo.protocol.package import PackageDecoder
from zpomelo.protocol.protobuf import Protobuf, ProtobufPair

from tests.protocol.vectors import (  # docs/protocol.md section 9
    ERROR_RESPONSE_VECTOR, HANDSHAKE_ERROR_VECTOR, KICK_VECTOR, PUSH_PROTOBUF_VECTOR, PUSH_VECTOR,
    REQUEST_DICT_VECTOR, REQUEST_VECTOR, h)


def one_package(data):
    """Decode `data` as exactly one package, fed all at once and byte by byte."""
    whole = PackageDecoder().feed(data)
    decoder = PackageDecoder()
    trickled = []
    for i in range(len(data)):
        trickled += decoder.feed(data[i:i + 1])
    assert whole == trickled
    assert len(whole) == 1
    return whole[0]


ENTRY = "connector.entryHandler.entry"


def dictionary_with_code(route, code, extra=()):
    """A RouteDictionary where `route` (a handler route) gets `code`: code-1 routes sort before."""
    before = ["aaa.h.r%02d" % i for i in range(code - 1)]
    return RouteDictionary(before + [route], extra)


# ---- section 9 -------------------------------------------------------------------------------

def test_request_vector_encodes_and_decodes():
    client = ClientCodec()
    assert client.encode_request(1, ENTRY, {"uid": "a"}) == REQUEST_VECTOR
    assert package.encode(package.DATA, message.encode_request(1, ENTRY, b'{"uid":"a"}')) \
        == REQUEST_VECTOR
    ptype, body = one_package(REQUEST_VECTOR)
    assert ptype == package.DATA
    assert message.decode(body) == (message.REQUEST, 1, ENTRY, b'{"uid":"a"}')
    assert ServerCodec().decode(body) == (message.REQUEST, 1, ENTRY, {"uid": "a"})


def test_request_with_dictionary_code_vector():
    dictionary = dictionary_with_code(ENTRY, 8)
    assert dictionary.code_of(ENTRY) == 8
    client = ClientCodec()
    client.apply_handshake(dictionary.handshake_sys(None))
    assert client.encode_request(1, ENTRY, {"uid": "a"}) == REQUEST_DICT_VECTOR
    assert package.encode(package.DATA, message.encode(message.REQUEST, 1, 8, b'{"uid":"a"}')) \
        == REQUEST_DICT_VECTOR
    ptype, body = one_package(REQUEST_DICT_VECTOR)
    assert message.decode(body) == (message.REQUEST, 1, 8, b'{"uid":"a"}')
    assert ServerCodec(dictionary).decode(body) == (message.REQUEST, 1, ENTRY, {"uid": "a"})


def test_error_response_vector():
    assert ServerCodec().encode_response(3, ENTRY, {"code": 500}) == ERROR_RESPONSE_VECTOR
    assert ServerCodec().encode_response_raw(3, b'{"code":500}') == ERROR_RESPONSE_VECTOR
    _, body = one_package(ERROR_RESPONSE_VECTOR)
    assert message.decode(body) == (message.RESPONSE, 3, None, b'{"code":500}')
    assert ClientCodec().decode(body) == (message.RESPONSE, 3, None, {"code": 500})


def test_push_vector():
    assert ServerCodec().encode_push("onChat", {"msg": "hi"}) == PUSH_VECTOR
    _, body = one_package(PUSH_VECTOR)
    assert message.decode(body) == (message.PUSH, 0, "onChat", b'{"msg":"hi"}')
    assert ClientCodec().decode(body) == (message.PUSH, 0, "onChat", {"msg": "hi"})


def test_push_with_dictionary_code_and_protobuf_body_vector():
    dictionary = RouteDictionary(["aaa.h.r%02d" % i for i in range(12)], ["onHello"])
    assert dictionary.code_of("onHello") == 13
    pair = ProtobufPair(server_protos={"onHello": {"required string text": 1}})
    server = ServerCodec(dictionary, pair)
    assert server.encode_push("onHello", {"text": "hello"}) == PUSH_PROTOBUF_VECTOR
    _, body = one_package(PUSH_PROTOBUF_VECTOR)
    assert message.decode(body) == (message.PUSH, 0, 13, h("0a 05 68 65 6c 6c 6f"))
    client = ClientCodec()
    client.apply_handshake(dict(dictionary.handshake_sys(), **pair.handshake_sys()))
    assert client.decode(body) == (message.PUSH, 0, "onHello", {"text": "hello"})


def test_handshake_ack_and_heartbeat_vectors():
    assert package.HANDSHAKE_ACK_PACKAGE == h("02 00 00 00") \
        == package.encode(package.HANDSHAKE_ACK)
    assert package.HEARTBEAT_PACKAGE == h("03 00 00 00") == package.encode(package.HEARTBEAT)
    assert one_package(h("02 00 00 00")) == (package.HANDSHAKE_ACK, b"")
    assert one_package(h("03 00 00 00")) == (package.HEARTBEAT, b"")


def test_minimal_handshake_reply_vector():
    vector = h("01 00 00 22") + b'{"code":200,"sys":{"heartbeat":3}}'
    assert handshake.encode_response(200, {"heartbeat": 3}) == vector
    ptype, body = one_package(vector)
    assert ptype == package.HANDSHAKE
    assert handshake.parse_response(body) == {"code": 200, "sys": {"heartbeat": 3}}


def test_handshake_error_vector():
    assert handshake.encode_response(500) == HANDSHAKE_ERROR_VECTOR
    ptype, body = one_package(HANDSHAKE_ERROR_VECTOR)
    assert ptype == package.HANDSHAKE
    assert handshake.parse_response(body) == {"code": 500}


def test_kick_vector():
    assert handshake.encode_kick("kick") == KICK_VECTOR
    ptype, body = one_package(KICK_VECTOR)
    assert ptype == package.KICK
    assert handshake.parse_kick(body) == "kick"


# ---- section 6: ids and flags -----------------------------------------------------------------

@pytest.mark.parametrize("msg_id, encoded", [
    (1, "01"), (127, "7f"), (128, "80 01"), (300, "ac 02"), (16384, "80 80 01"),
    (2 ** 31 - 1, "ff ff ff ff 07"), (2 ** 32 - 1, "ff ff ff ff 0f"), (0, "00"),
])
def test_id_varints(msg_id, encoded):
    assert message.encode_id(msg_id) == h(encoded)
    assert message.decode_id(h(encoded), 0) == (msg_id, len(h(encoded)))
    request = message.encode_request(msg_id, "a.b.c", b"{}")
    assert request == b"\x00" + h(encoded) + b"\x05a.b.c{}"
    assert message.decode(request) == (message.REQUEST, msg_id, "a.b.c", b"{}")


@pytest.mark.parametrize("mtype, route, flag", [
    (message.REQUEST, "a.b.c", 0x00), (message.REQUEST, 5, 0x01),
    (message.NOTIFY, "a.b.c", 0x02), (message.NOTIFY, 5, 0x03),
    (message.RESPONSE, None, 0x04), (message.PUSH, "onX", 0x06), (message.PUSH, 5, 0x07),
])
def test_flag_values(mtype, route, flag):
    data = message.encode(mtype, 9, route, b"{}")
    assert data[0] == flag
    decoded = message.decode(data)
    assert (decoded.type, decoded.route) == (mtype, route)


# ---- section 7: the protobuf example -----------------------------------------------------------

def test_protobuf_example():
    protos = Protobuf({"r": {"required string name": 1, "required sInt32 n": 2,
                             "repeated uInt32 xs": 3}})
    vector = h("0a 02 61 62 10 05 18 02 01 ac 02")
    assert protos.encode("r", {"name": "ab", "n": -3, "xs": [1, 300]}) == vector
    assert protos.decode("r", vector) == {"name": "ab", "n": -3, "xs": [1, 300]}


# ---- vectors produced by Pomelo's own codecs (see gen_pomelo_vectors.js) ----------------------

with open(os.path.join(os.path.dirname(__file__), "pomelo_vectors.json"), encoding="utf-8") as f:
    POMELO = json.load(f)


@pytest.mark.parametrize("route, obj, encoded", POMELO["protobuf"])
def test_pomelo_protobuf_vectors(route, obj, encoded):
    protos = Protobuf(POMELO["protos"])
    assert protos.encode(route, obj).hex() == encoded
    decoded = protos.decode(route, bytes.fromhex(encoded))
    # Pomelo's encoder skips empty repeated fields, so they come back absent.
    expected = {k: v for k, v in obj.items() if v != []}
    assert decoded == expected


def test_pomelo_parsed_protos_and_version():
    protos = Protobuf(POMELO["protos"])
    assert js_stringify(protos.parsed) == POMELO["parsed_json"]
    pair = ProtobufPair(server_protos=None, client_protos=POMELO["protos"])
    assert pair.version == POMELO["proto_version_client_only"]
    # The parsed form (what a Pomelo server sends in its handshake) compiles to the same codec.
    reparsed = Protobuf(json.loads(POMELO["parsed_json"]))
    for route, obj, encoded in POMELO["protobuf"]:
        assert reparsed.encode(route, obj).hex() == encoded


def test_pomelo_dictionary_version():
    assert js_md5_base64(js_stringify(POMELO["dict"])) == POMELO["dict_version"]
    dictionary = RouteDictionary(["connector.entryHandler.entry", "chat.chatHandler.send"],
                                 ["onChat", "onAdd", "ünïcode"])
    assert dictionary.route_to_code == POMELO["dict"]
    assert dictionary.version == POMELO["dict_version"]


@pytest.mark.parametrize("msg_id, mtype, compressed, route, body, encoded", POMELO["messages"])
def test_pomelo_message_vectors(msg_id, mtype, compressed, route, body, encoded):
    assert bool(compressed) == isinstance(route, int)
    data = message.encode(mtype, msg_id, route, body.encode("utf-8"))
    assert data.hex() == encoded
    decoded = message.decode(bytes.fromhex(encoded))
    has_id = mtype in (message.REQUEST, message.RESPONSE)
    assert decoded == (mtype, msg_id if has_id else 0, route, body.encode("utf-8"))


@pytest.mark.parametrize("ptype, body, encoded", POMELO["packages"])
def test_pomelo_package_vectors(ptype, body, encoded):
    assert package.encode(ptype, bytes.fromhex(body)).hex() == encoded
    assert one_package(bytes.fromhex(encoded)) == (ptype, bytes.fromhex(body))
