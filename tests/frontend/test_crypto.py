"""Pomelo's useCrypto: the client's RSA key in the handshake, every request body signed."""
import os

import pytest

from zpomelo.client import Client, HandshakeCache, HandshakeError
from zpomelo.protocol import rsa
from zpomelo.protocol.codec import encode_json
from zpomelo.testing import InProcessCluster

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "apps", "crypto")
pytestmark = pytest.mark.timeout(60)


class RsaHandshake(HandshakeCache):
    def __init__(self, n, e):
        super().__init__()
        self.rsa = {"rsa_n": "%x" % n, "rsa_e": "%x" % e}

    def request_sys(self):
        sys = super().request_sys()
        sys["rsa"] = self.rsa
        return sys


@pytest.fixture(scope="module")
def key():
    return rsa.generate_key(1024)


def signed(body, n, d):
    return dict(body, __crypto__=rsa.sign_sha256(n, d, encode_json(body)))


def test_signatures_round_trip_and_reject_tampering(key):
    n, e, d = key
    sig = rsa.sign_sha256(n, d, b'{"a":1}')
    assert rsa.verify_sha256(n, e, b'{"a":1}', sig)
    assert not rsa.verify_sha256(n, e, b'{"a":2}', sig)
    assert not rsa.verify_sha256(n, e, b'{"a":1}', "zz-not-hex")
    assert not rsa.verify_sha256(n, e, b'{"a":1}', "%x" % n)


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_signed_requests_pass_and_unsigned_or_forged_are_refused(key, transport):
    n, e, d = key
    cluster = InProcessCluster(APP_DIR, "test").start()
    try:
        port = cluster.client_port("connector-1")
        with pytest.raises(HandshakeError) as no_key:
            Client.connect("127.0.0.1", port, transport=transport)
        assert no_key.value.code == 500
        client = Client.connect("127.0.0.1", port, transport=transport, cache=RsaHandshake(n, e))
        body = {"hello": "world", "n": 3}
        assert client.request("connector.entryHandler.echo", signed(body, n, d)) == body
        refused = client.request("connector.entryHandler.echo", body)
        assert refused["code"] == 500 and "__crypto__" in refused["error"]
        forged = dict(signed(body, n, d), n=4)
        assert client.request("connector.entryHandler.echo", forged)["code"] == 500
        assert client.request("connector.entryHandler.echo", signed({"again": 1}, n, d)) == {"again": 1}
        client.close()
    finally:
        cluster.stop()


# ---- the text Pomelo's client signs is JavaScript's JSON.stringify ---------------------------

NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "node")
CRYPTO_CLIENT = os.path.join(NODE_DIR, "pomelo_crypto_client.js")


def _node():
    import shutil
    if not (shutil.which("node") and os.path.isdir(os.path.join(NODE_DIR, "node_modules", "pomelo-protocol"))):
        if os.environ.get("CI"):
            pytest.fail("node and tests/node/node_modules are required in CI (tests/install-system-deps.sh)")
        pytest.skip("node or tests/node/node_modules missing: run tests/install-system-deps.sh")


def _run_node(*args):
    import json
    from gevent import subprocess
    run = subprocess.run(["node", CRYPTO_CLIENT, *args], capture_output=True, text=True, timeout=40)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout.strip().split("\n")[-1])     # not splitlines: U+2028 is in it


def test_numbers_are_written_as_javascript_writes_them():
    """3000 doubles (specials like 1e-7, 0.000001, 1e21, -0, 2**64; random bit patterns; random
    magnitudes; big integers) formatted by node's JSON.stringify and by jsjson.number."""
    import struct
    from zpomelo.protocol import jsjson
    _node()
    pairs = _run_node("--numbers", "3000")
    assert len(pairs) > 2500
    wrong = [(text, jsjson.number(struct.unpack(">d", bytes.fromhex(bits))[0]))
             for bits, text in pairs
             if jsjson.number(struct.unpack(">d", bytes.fromhex(bits))[0]) != text]
    assert not wrong, wrong[:10]


def test_stringify_matches_javascript_on_text_key_order_and_ints():
    from zpomelo.protocol import jsjson
    # vectors written by node: JSON.stringify(JSON.parse(input)) (key order, big ints as doubles)
    assert jsjson.stringify({"b": 1, "a": 2, "10": 3, "2": 4, "-1": 5, "01": 6, "4294967295": 7,
                             "4294967294": 8}) == \
        '{"2":4,"10":3,"4294967294":8,"b":1,"a":2,"-1":5,"01":6,"4294967295":7}'
    assert jsjson.stringify([12345678901234567890, 2 ** 64, -0.0, 10 ** 400, 1e-7]) == \
        '[12345678901234567000,18446744073709552000,0,null,1e-7]'
    assert jsjson.stringify("\ud800 \ud83d\ude00 \u2028 \x07 \x7f \"\\") == \
        '"\\ud800 \U0001F600 \u2028 \\u0007 \x7f \\"\\\\"'


@pytest.mark.parametrize("transport_route", ["connector.entryHandler.echo"])
def test_a_request_signed_by_pomelos_own_client_code_verifies(transport_route):
    """node runs pomelo-client.js's sendMessage (stringify, sign, parse, add __crypto__) with
    Pomelo's codec; the handshake sends rsa_e as the number 65537, as jsbn does. Every message
    (1e-7, 0.000001, 1e21, 2**64-sized ints, -0, unicode, a lone surrogate, integer-like keys)
    must verify and be echoed."""
    import json
    _node()
    with InProcessCluster(APP_DIR, "test") as cluster:
        out = _run_node(str(cluster.client_port("connector-1")), transport_route)
    assert out["ok"], out
    results = out["results"]
    assert len(results["responses"]) == 5
    for msg_id, signed_text in results["signed"].items():
        answer = json.loads(results["responses"][msg_id])
        assert "code" not in answer, (signed_text, answer)        # no signature refusal
        assert answer == json.loads(signed_text), (signed_text, answer)
