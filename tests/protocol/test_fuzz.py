"""Random and mutated bytes into every decoder, for a bounded time: only ProtocolError escapes."""
import os
import random
import time

import pytest

from zpomelo.errors import ProtocolError
from zpomelo.protocol import handshake, message, package
from zpomelo.protocol.codec import ClientCodec, ServerCodec
from zpomelo.protocol.dictionary import RouteDictionary
from zpomelo.protocol.package import PackageDecoder
from zpomelo.protocol.protobuf import ProtobufPair

SECONDS_PER_DECODER = float(os.environ.get("ZPOMELO_FUZZ_SECONDS", "0.25"))
MAX_CASES = 10 ** 7
SEED = int(os.environ.get("ZPOMELO_FUZZ_SEED", "20240601"))

PROTOS = {
    "a.h.move": {"required uInt32 id": 1, "optional sInt32 dx": 2, "optional float f": 3,
                 "optional double d": 4, "repeated string tags": 5, "repeated Point path": 6,
                 "repeated uInt32 ids": 7, "optional bool b": 8, "optional Node n": 9,
                 "message Point": {"required float x": 1, "required float y": 2}},
    "onMove": {"required uInt32 id": 1, "repeated double ds": 2},
    "message Node": {"optional uInt32 v": 1, "repeated Node kids": 2},
}
DICTIONARY = RouteDictionary(["a.h.move", "a.h.chat", "b.h.x"], ["onMove", "onChat"])
PAIR = ProtobufPair(PROTOS, PROTOS)
SERVER = ServerCodec(DICTIONARY, PAIR)


def make_client():
    client = ClientCodec()
    client.apply_handshake(dict(DICTIONARY.handshake_sys(), **PAIR.handshake_sys()))
    client.encode_request(1, "a.h.move", {"id": 1})      # so response 1 decodes as protobuf
    return client


CLIENT = make_client()

SEEDS = [
    message.encode_request(1, 1, PAIR.client.encode("a.h.move", {
        "id": 3, "dx": -2, "f": 1.5, "d": 2.5, "tags": ["x", "yz"], "path": [{"x": 1, "y": 2}],
        "ids": [1, 300], "b": True, "n": {"v": 1, "kids": [{"v": 2}, {}]}})),
    message.encode_request(300, "a.h.chat", b'{"content":"h\xc3\xa9","n":[1,2,{"a":null}]}'),
    message.encode_notify(2, b"{}"),
    message.encode_push(4, PAIR.server.encode("onMove", {"id": 1, "ds": [1.0, -2.0]})),
    message.encode_push("onChat", b'{"msg":"hi"}'),
    message.encode_response(1, PAIR.server.encode("a.h.move",
                                                  {"id": 7, "path": [{"x": 0, "y": 0}]})),
    b'{"sys":{"type":"js","version":"1","dictVersion":"x"},"user":{"a":1}}',
    b'{"code":200,"sys":{"heartbeat":3,"useDict":true}}',
]


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if op == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 1 and data:
            del data[rng.randrange(len(data)):][:rng.randint(1, 8)]
        elif op == 2:
            pos = rng.randrange(len(data) + 1)
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
        else:
            data = data[:rng.randrange(len(data) + 1)]
    return bytes(data)


def random_input(rng):
    if rng.random() < 0.6:
        return mutate(rng, rng.choice(SEEDS))
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))


def feed_packages(data):
    decoder = PackageDecoder(max_body=64)
    stream = package.encode(package.DATA, data[:64]) + data
    pos = 0
    step = 1 + len(data) % 7
    while pos < len(stream):
        decoder.feed(stream[pos:pos + step])
        pos += step


def protobuf_decode(data):
    PAIR.client.decode("a.h.move", data[2:] if len(data) > 2 else data)


DECODERS = {
    "package": feed_packages,
    "message": message.decode,
    "handshake_request": handshake.parse_request,
    "handshake_response": handshake.parse_response,
    "kick": handshake.parse_kick,
    "protobuf": protobuf_decode,
    "server_codec": SERVER.decode,
    "client_codec": CLIENT.decode,
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", sorted(DECODERS))
def test_only_protocol_error_escapes(name):
    decode = DECODERS[name]
    rng = random.Random("%s-%s" % (SEED, name))
    deadline = time.monotonic() + SECONDS_PER_DECODER
    cases = rejected = 0
    while cases < MAX_CASES and time.monotonic() < deadline:
        data = random_input(rng)
        cases += 1
        try:
            decode(data)
        except ProtocolError:
            rejected += 1
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail("%s raised %r on %s (seed %s)" % (name, exc, data.hex(), SEED))
    assert cases > 100
    assert 0 < rejected < cases or name == "package"
