"""zpomelo.protocol.websocket: the pure RFC 6455 pieces (no sockets)."""
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zpomelo.errors import ProtocolError
from zpomelo.protocol import websocket as ws


def test_accept_key_matches_rfc6455_example():
    assert ws.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert ws.accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def _request(**overrides):
    headers = {"Host": "example", "Upgrade": "websocket", "Connection": "Upgrade",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
    first = overrides.pop("first", "GET /any/path?x=1 HTTP/1.1")
    for name, value in overrides.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    lines = [first] + ["%s: %s" % item for item in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_parse_upgrade_accepts_a_valid_request_on_any_path():
    headers = ws.parse_upgrade(_request())
    assert headers["sec-websocket-key"] == "dGhlIHNhbXBsZSBub25jZQ=="
    assert headers[":path"] == "/any/path?x=1"
    assert headers[":method"] == "GET"


def test_parse_upgrade_is_case_insensitive_about_header_names_and_tokens():
    raw = (b"GET / HTTP/1.1\r\nHOST: x\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\n"
           b"sec-websocket-key: abc\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n")
    assert ws.parse_upgrade(raw)["sec-websocket-key"] == "abc"


@pytest.mark.parametrize("value", ["websocket", "WebSocket", "h2c, websocket", " WEBSOCKET ,x"])
def test_parse_upgrade_finds_the_websocket_token_in_a_list(value):
    assert ws.parse_upgrade(_request(Upgrade=value))[":method"] == "GET"


@pytest.mark.parametrize("value", ["websocketx", "h2c", "web socket", ""])
def test_parse_upgrade_wants_the_whole_websocket_token(value):
    with pytest.raises(ProtocolError):
        ws.parse_upgrade(_request(Upgrade=value))


@pytest.mark.parametrize("overrides", [
    {"first": "POST / HTTP/1.1"},
    {"first": "GET / HTTP/1.0"},
    {"first": "GET /"},
    {"Upgrade": None},
    {"Upgrade": "h2c"},
    {"Sec-WebSocket-Key": None},
    {"Sec-WebSocket-Version": "8"},
    {"Sec-WebSocket-Version": None},
])
def test_parse_upgrade_rejects_non_upgrades(overrides):
    with pytest.raises(ProtocolError):
        ws.parse_upgrade(_request(**overrides))


def test_parse_upgrade_rejects_malformed_header_lines():
    with pytest.raises(ProtocolError):
        ws.parse_upgrade(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")


def test_upgrade_response_and_client_check_round_trip():
    request, key = ws.client_request("localhost:3010", "/")
    headers = ws.parse_upgrade(request)
    response = ws.upgrade_response(headers["sec-websocket-key"])
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert response.endswith(b"\r\n\r\n")
    assert ws.check_upgrade_response(response, key)["upgrade"] == "websocket"
    with pytest.raises(ProtocolError):
        ws.check_upgrade_response(response, ws.new_key())
    with pytest.raises(ProtocolError):
        ws.check_upgrade_response(ws.error_response(400, "Bad Request"), key)


def test_error_response_is_a_complete_http_response():
    raw = ws.error_response(400, "Bad Request", "not a WebSocket upgrade")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request")
    assert b"Content-Length: %d" % len(body) in head
    assert body == b"not a WebSocket upgrade\n"


@pytest.mark.parametrize("size, header_len", [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_encode_frame_length_forms(size, header_len):
    payload = os.urandom(size)
    frame = ws.encode_frame(payload)
    assert len(frame) == header_len + size
    assert frame[0] == 0x82
    assert frame[header_len:] == payload
    assert ws.FrameDecoder(max_payload=1 << 20).feed(frame) == [(ws.BINARY, payload)]


def test_masked_frame_round_trips_and_is_really_masked():
    payload = b"hello pomelo" * 20
    frame = ws.encode_frame(payload, mask=True)
    assert frame[1] & 0x80
    assert payload not in frame
    assert ws.FrameDecoder(require_mask=True).feed(frame) == [(ws.BINARY, payload)]


def test_rfc6455_masked_hello_example():
    frame = bytes.fromhex("818537fa213d7f9f4d5158")
    assert ws.FrameDecoder(require_mask=True).feed(frame) == [(ws.TEXT, b"Hello")]


def test_decoder_fed_one_byte_at_a_time_equals_fed_at_once():
    frames = (ws.encode_frame(b"a" * 300, mask=True) + ws.encode_frame(b"", ws.PING, mask=True)
              + ws.encode_frame(b"x" * 70000, mask=True) + ws.encode_frame(b"tail", ws.TEXT))
    whole = ws.FrameDecoder(max_payload=1 << 20).feed(frames)
    dec = ws.FrameDecoder(max_payload=1 << 20)
    pieces = []
    for i in range(len(frames)):
        pieces.extend(dec.feed(frames[i:i + 1]))
    assert pieces == whole
    assert [op for op, _ in whole] == [ws.BINARY, ws.PING, ws.BINARY, ws.TEXT]
    assert whole[2][1] == b"x" * 70000


def test_fragmented_message_with_control_frames_between_fragments():
    data = (ws.encode_frame(b"one-", ws.BINARY, mask=True, fin=False)
            + ws.encode_frame(b"ping!", ws.PING, mask=True)
            + ws.encode_frame(b"two-", ws.CONTINUATION, mask=True, fin=False)
            + ws.encode_frame(b"", ws.PONG, mask=True)
            + ws.encode_frame(b"three", ws.CONTINUATION, mask=True))
    out = ws.FrameDecoder(require_mask=True).feed(data)
    assert out == [(ws.PING, b"ping!"), (ws.PONG, b""), (ws.BINARY, b"one-two-three")]


def test_fragmented_text_keeps_the_first_opcode():
    data = ws.encode_frame(b"ab", ws.TEXT, fin=False) + ws.encode_frame(b"cd", ws.CONTINUATION)
    assert ws.FrameDecoder().feed(data) == [(ws.TEXT, b"abcd")]


def test_close_frame_round_trip():
    frame = ws.encode_close(ws.CLOSE_TOO_BIG, "too big")
    [(opcode, payload)] = ws.FrameDecoder().feed(frame)
    assert opcode == ws.CLOSE
    assert ws.parse_close(payload) == (1009, "too big")
    assert ws.parse_close(b"") == (None, "")


@pytest.mark.parametrize("data, why", [
    (bytes([0xC2, 0x00]), "reserved bit"),
    (bytes([0x83, 0x00]), "reserved opcode 3"),
    (bytes([0x8B, 0x00]), "reserved control opcode 11"),
    (bytes([0x80, 0x00]), "continuation with nothing to continue"),
    (bytes([0x09, 0x00]), "fragmented ping"),
    (bytes([0x89, 126, 0x00, 0x7E]) + b"x" * 126, "control frame over 125 bytes"),
    (bytes([0x82, 127]) + (1 << 63).to_bytes(8, "big"), "64-bit length with the high bit set"),
    (ws.encode_frame(b"a", fin=False) + ws.encode_frame(b"b"), "new message inside a fragmented one"),
])
def test_decoder_rejects_bad_frames(data, why):
    with pytest.raises(ProtocolError):
        ws.FrameDecoder(max_payload=1 << 20).feed(data)


def test_decoder_rejects_unmasked_frames_when_mask_required():
    with pytest.raises(ProtocolError):
        ws.FrameDecoder(require_mask=True).feed(ws.encode_frame(b"hi"))


def test_max_payload_is_enforced_from_the_header_alone():
    dec = ws.FrameDecoder(max_payload=1000)
    header_only = ws.encode_frame(b"x" * 1001)[:4]
    with pytest.raises(ProtocolError):
        dec.feed(header_only)
    assert ws.FrameDecoder(max_payload=1000).feed(ws.encode_frame(b"x" * 1000)) == [
        (ws.BINARY, b"x" * 1000)]


def test_max_payload_counts_all_fragments():
    dec = ws.FrameDecoder(max_payload=100)
    assert dec.feed(ws.encode_frame(b"x" * 60, fin=False)) == []
    with pytest.raises(ProtocolError):
        dec.feed(ws.encode_frame(b"y" * 60, ws.CONTINUATION)[:2])


def test_partial_input_buffers_without_quadratic_copies():
    payload = os.urandom(50000)
    frame = ws.encode_frame(payload, mask=True)
    dec = ws.FrameDecoder(max_payload=1 << 16)
    out = []
    for i in range(0, len(frame), 7):
        out.extend(dec.feed(frame[i:i + 7]))
    assert out == [(ws.BINARY, payload)]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_only_raise_protocol_error(data):
    dec = ws.FrameDecoder(max_payload=200, require_mask=random.random() < 0.5)
    try:
        for opcode, payload in dec.feed(data):
            assert opcode in (ws.TEXT, ws.BINARY, ws.CLOSE, ws.PING, ws.PONG)
            assert len(payload) <= 200
    except ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=200), st.booleans()), min_size=1, max_size=6),
       st.integers(min_value=1, max_value=50))
def test_fuzz_fragmented_messages_survive_any_chunking(parts, chunk):
    stream = b""
    expected = []
    for payload, fragment in parts:
        if fragment and len(payload) > 1:
            half = len(payload) // 2
            stream += ws.encode_frame(payload[:half], mask=True, fin=False)
            stream += ws.encode_frame(payload[half:], ws.CONTINUATION, mask=True)
        else:
            stream += ws.encode_frame(payload, mask=True)
        expected.append((ws.BINARY, payload))
    dec = ws.FrameDecoder(require_mask=True)
    got = []
    for i in range(0, len(stream), chunk):
        got.extend(dec.feed(stream[i:i + chunk]))
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_parse_upgrade_only_raises_protocol_error(data):
    try:
        ws.parse_upgrade(data)
    except ProtocolError:
        pass
