"""Random messages through zpomelo and Pomelo's own pomelo-protobuf (node), both ways.

Runs only where node can load pomelo-protobuf: set ZPOMELO_NODE_PATH to a node_modules holding
it (`npm install pomelo-protobuf@0.4.0`), or install it into tests/node. Skipped otherwise; the
fixed vectors in pomelo_vectors.json are checked everywhere by test_vectors.py.
"""
import json
import os
import random
import shutil
import struct
import subprocess

import pytest

from zpomelo.protocol.protobuf import Protobuf

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_PATH = os.environ.get("ZPOMELO_NODE_PATH") or os.path.join(HERE, "..", "node", "node_modules")
SCRIPT = os.path.join(HERE, "pomelo_protobuf_roundtrip.js")

PROTOS = {
    "r": {"required uInt32 u": 1, "optional sInt32 s": 2, "optional int32 i": 3,
          "optional float f": 4, "optional double d": 5, "optional string t": 6,
          "repeated uInt32 us": 7, "repeated sInt32 ss": 8, "repeated double ds": 9,
          "repeated string ts": 10, "repeated P ps": 11, "optional Q q": 12,
          "repeated float fs": 13, "optional Tree tree": 14},
    "message P": {"required sInt32 a": 1, "optional string b": 2},
    "message Q": {"repeated P inner": 1, "optional uInt32 z": 2,
                  "message P": {"required uInt32 other": 1}},       # shadows the root P
    "message Tree": {"optional uInt32 v": 1, "repeated Tree kids": 2},
}


def node_has_pomelo_protobuf():
    if shutil.which("node") is None:
        return False
    probe = subprocess.run(["node", "-e", "require('pomelo-protobuf')"], capture_output=True,
                           env=dict(os.environ, NODE_PATH=NODE_PATH), timeout=30)
    return probe.returncode == 0


def random_cases(rng, count):
    def f32():
        return struct.unpack("<f", struct.pack("<f", rng.uniform(-1e6, 1e6)))[0]

    def text():
        return "".join(rng.choice('ab é日\u00ff"\\\n') for _ in range(rng.randint(0, 6)))

    def p():
        out = {"a": rng.randint(-2 ** 31, 2 ** 31 - 1)}
        if rng.random() < 0.5:
            out["b"] = text()
        return out

    def tree(depth=0):
        out = {"v": rng.randint(0, 1000)}
        if depth < 3 and rng.random() < 0.6:
            out["kids"] = [tree(depth + 1) for _ in range(rng.randint(1, 3))]
        return out

    def some(make, low=1, high=4):
        return lambda: [make() for _ in range(rng.randint(low, high))]

    fields = {
        "s": lambda: rng.randint(-2 ** 31, 2 ** 31 - 1),
        "i": lambda: rng.randint(-2 ** 31, 2 ** 31 - 1),
        "f": f32, "d": lambda: rng.uniform(-1e300, 1e300), "t": text,
        "us": some(lambda: rng.randint(0, 2 ** 32 - 1)),
        "ss": some(lambda: rng.randint(-2 ** 31, 2 ** 31 - 1)),
        "ds": some(lambda: rng.uniform(-10, 10)), "fs": some(f32), "ts": some(text),
        "ps": some(p, 1, 3),
        "q": lambda: {"inner": some(lambda: {"other": rng.randint(0, 99999)}, 1, 3)(), "z": 5},
        "tree": tree,
    }
    cases = []
    for _ in range(count):
        obj = {"u": rng.choice([0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 - 1,
                                rng.randint(0, 2 ** 32 - 1)])}
        names = list(fields)
        rng.shuffle(names)
        for name in names[:rng.randint(0, len(names))]:
            obj[name] = fields[name]()
        cases.append(obj)
    return cases


@pytest.mark.timeout(60)
@pytest.mark.skipif(not node_has_pomelo_protobuf(), reason="node cannot load pomelo-protobuf")
def test_random_messages_match_pomelo_protobuf_both_ways():
    codec = Protobuf(PROTOS)
    objects = random_cases(random.Random(11), 300)
    cases = [["r", obj, codec.encode("r", obj).hex()] for obj in objects]
    run = subprocess.run(["node", SCRIPT], input=json.dumps({"protos": PROTOS, "cases": cases}),
                         capture_output=True, text=True, timeout=50,
                         env=dict(os.environ, NODE_PATH=NODE_PATH))
    assert run.returncode == 0, run.stderr
    for (_, obj, ours), (pomelo_decoded, pomelo_encoded) in zip(cases, json.loads(run.stdout)):
        assert pomelo_encoded == ours, obj               # same bytes as Pomelo's encoder
        assert pomelo_decoded == obj                     # Pomelo's decoder reads ours back
        assert codec.decode("r", bytes.fromhex(pomelo_encoded)) == obj
