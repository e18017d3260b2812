"""RSA-SHA256 (PKCS#1 v1.5) signatures for Pomelo's ``useCrypto``, in pure Python.

Pomelo's web client sends its public key in the handshake: ``sys.rsa = {rsa_n: hex, rsa_e:
65537}`` (jsbn's ``RSAKey.e`` is a number; a hex string is taken too). It signs each request:
``body.__crypto__`` = hex of the signature over ``JSON.stringify(msg)``, the body without
``__crypto__`` as JavaScript writes it. ``signed_text`` rebuilds that text from the parsed body
with `jsjson` (JavaScript's number forms, key order and escapes; Python's json differs on all
three). Verifying is one modular exponentiation, so no dependency is needed.
"""
import hashlib
import random

from zpomelo.errors import ProtocolError
from zpomelo.protocol import jsjson

# DER prefix of DigestInfo for SHA-256 (RFC 8017, section 9.2, note 1)
_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def _emsa_pkcs1_sha256(message, k):
    digest_info = _SHA256_PREFIX + hashlib.sha256(message).digest()
    if k < len(digest_info) + 11:
        raise ProtocolError("RSA key too short for a SHA-256 signature")
    return b"\x00\x01" + b"\xff" * (k - len(digest_info) - 3) + b"\x00" + digest_info


def parse_public_key(rsa):
    """``{"rsa_n": hex, "rsa_e": int or hex}`` -> (n, e); ProtocolError if it is not a usable key."""
    try:
        n = int(str(rsa["rsa_n"]), 16)
        e = rsa["rsa_e"]
        if e.__class__ is not int:     # Pomelo's client sends the number; a hex string is taken too
            e = int(str(e), 16)
    except (KeyError, TypeError, ValueError):
        raise ProtocolError("the handshake's sys.rsa needs hex rsa_n and rsa_e (a number or "
                            "hex)") from None
    if n.bit_length() < 512 or n.bit_length() > 8192 or e < 3 or e >= n:
        raise ProtocolError("the handshake's RSA key is not usable (%d-bit modulus)" % n.bit_length())
    return n, e


def signed_text(body):
    """The bytes a Pomelo client signed for ``body`` (``__crypto__`` already removed): UTF-8 of
    ``JSON.stringify(body)``; None when the body has no JSON form (it cannot have been signed)."""
    try:
        return jsjson.stringify(body).encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        return None


def verify_sha256(n, e, message, signature_hex):
    """True when ``signature_hex`` is a valid RSA-SHA256 signature of ``message`` (bytes)."""
    try:
        signature = int(str(signature_hex), 16)
    except ValueError:
        return False
    if not 0 < signature < n:
        return False
    k = (n.bit_length() + 7) // 8
    recovered = pow(signature, e, n).to_bytes(k, "big")
    return recovered == _emsa_pkcs1_sha256(message, k)


def sign_sha256(n, d, message):
    """Hex RSA-SHA256 signature of ``message`` with the private exponent ``d`` (clients, tests)."""
    k = (n.bit_length() + 7) // 8
    em = int.from_bytes(_emsa_pkcs1_sha256(message, k), "big")
    return "%x" % pow(em, d, n)


def _is_probable_prime(n, rounds=24):
    if n < 4:
        return n in (2, 3)
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    rng = random.SystemRandom()
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def generate_key(bits=1024, e=65537):
    """A new key pair (n, e, d) for a client or a test; slow-ish in pure Python (~0.1-1 s)."""
    rng = random.SystemRandom()

    def prime(size):
        while True:
            candidate = rng.getrandbits(size) | (1 << (size - 1)) | 1
            if candidate % e != 1 and _is_probable_prime(candidate):
                return candidate
    while True:
        p, q = prime(bits // 2), prime(bits - bits // 2)
        n = p * q
        if p != q and n.bit_length() == bits:
            return n, e, pow(e, -1, (p - 1) * (q - 1))
