"""Handshake and kick bodies."""
import pytest

from zpomelo.errors import ProtocolError
from zpomelo.protocol import handshake, package
from zpomelo.protocol.package import PackageDecoder


def only_package(data):
    [(ptype, body)] = PackageDecoder().feed(data)
    return ptype, body


def test_client_request_round_trip():
    sys = {"type": "js-websocket", "version": "0.0.1", "dictVersion": "abc"}
    data = handshake.encode_client_request(sys, {"token": "é"})
    ptype, body = only_package(data)
    assert ptype == package.HANDSHAKE
    assert body == '{"sys":{"type":"js-websocket","version":"0.0.1","dictVersion":"abc"},' \
                   '"user":{"token":"é"}}'.encode("utf-8")
    assert handshake.parse_request(body) == (sys, {"token": "é"})


def test_request_without_user():
    assert handshake.parse_request(b'{"sys":{}}') == ({}, None)
    _, body = only_package(handshake.encode_client_request({"type": "x"}))
    assert body == b'{"sys":{"type":"x"}}'


@pytest.mark.parametrize("body, match", [
    (b"", "not valid UTF-8 JSON"),
    (b"{", "not valid UTF-8 JSON"),
    (b"\xff\xfe", "not valid UTF-8 JSON"),
    (b"[1]", "must be a JSON object"),
    (b'{"user":{}}', "no 'sys' object"),
    (b'{"sys":[]}', "no 'sys' object"),
    (b'{"sys":{},"user":3}', "'user' must be an object"),
    (b"[" * 100000 + b"]" * 100000, "not valid UTF-8 JSON"),
])
def test_bad_requests(body, match):
    with pytest.raises(ProtocolError, match=match):
        handshake.parse_request(body)


def test_response_key_order_and_round_trip():
    sys = {"heartbeat": 3, "dict": {"a.b.c": 1}, "useDict": True}
    data = handshake.encode_response(200, sys, {"hello": "wörld"})
    ptype, body = only_package(data)
    assert ptype == package.HANDSHAKE
    assert body.startswith(b'{"code":200,"sys":{"heartbeat":3,')
    assert body.endswith('"user":{"hello":"wörld"}}'.encode("utf-8"))
    assert handshake.parse_response(body) == {"code": 200, "sys": sys, "user": {"hello": "wörld"}}
    assert only_package(handshake.encode_response(501))[1] == b'{"code":501}'


@pytest.mark.parametrize("body", [b'{"sys":{}}', b'{"code":"200"}', b'{"code":200,"sys":1}', b"7"])
def test_bad_responses(body):
    with pytest.raises(ProtocolError):
        handshake.parse_response(body)


def test_kick():
    ptype, body = only_package(handshake.encode_kick("server maintenance é"))
    assert ptype == package.KICK
    assert body == '{"reason":"server maintenance é"}'.encode("utf-8")
    assert handshake.parse_kick(body) == "server maintenance é"
    assert handshake.parse_kick(b"{}") == ""
    with pytest.raises(ProtocolError):
        handshake.parse_kick(b"kick")


def test_unencodable_reply_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="cannot encode"):
        handshake.encode_response(200, {"x": object()})
    # NaN has no JSON form: written as null, as JavaScript's JSON.stringify (a Pomelo server) does
    assert b'"x":null' in handshake.encode_response(200, {"x": float("nan")})
