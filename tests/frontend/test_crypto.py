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
