"""Handshake and kick bodies (docs/protocol.md sections 4 and 8): compact UTF-8 JSON in packages."""
from zpomelo.errors import ProtocolError
from zpomelo.protocol import package
from zpomelo.protocol.jsonbody import encode_json, loads
from zpomelo.protocol.message import decode_utf8


def dumps(obj):
    """Compact JSON as UTF-8 bytes, the way Pomelo's JSON.stringify writes it."""
    try:
        return encode_json(obj)
    except ProtocolError as exc:
        raise ProtocolError("cannot encode the %s as JSON: %s" % (type(obj).__name__, exc)) \
            from None


def _loads_object(body, what):
    if body.__class__ is not bytes:
        body = bytes(body)
    try:
        obj = loads(decode_utf8(body))
    except (ProtocolError, ValueError, RecursionError) as exc:
        raise ProtocolError("%s is not valid UTF-8 JSON: %s" % (what, exc)) from None
    if not isinstance(obj, dict):
        raise ProtocolError("%s must be a JSON object, got %s" % (what, type(obj).__name__))
    return obj


def parse_request(body):
    """A client's handshake body -> (sys, user). `sys` is required; `user` is a dict or None."""
    obj = _loads_object(body, "handshake request")
    sys = obj.get("sys")
    if not isinstance(sys, dict):
        raise ProtocolError("handshake request has no 'sys' object")
    user = obj.get("user")
    if user is not None and not isinstance(user, dict):
        raise ProtocolError("handshake request 'user' must be an object, got %s"
                            % type(user).__name__)
    return sys, user


def encode_response(code, sys=None, user=None):
    """The server's reply, a whole type-1 package: {"code":..,"sys":..,"user":..}."""
    reply = {"code": code}
    if sys is not None:
        reply["sys"] = sys
    if user is not None:
        reply["user"] = user
    return package.encode(package.HANDSHAKE, dumps(reply))


def encode_client_request(sys, user=None):
    """A client's handshake, a whole type-1 package: {"sys":..,"user":..}."""
    request = {"sys": sys}
    if user is not None:
        request["user"] = user
    return package.encode(package.HANDSHAKE, dumps(request))


def parse_response(body):
    """The server's handshake reply -> dict with an int `code` (and `sys`/`user` when present)."""
    reply = _loads_object(body, "handshake reply")
    code = reply.get("code")
    if code.__class__ is not int:
        raise ProtocolError("handshake reply has no integer 'code': %r" % (code,))
    sys = reply.get("sys")
    if sys is not None and not isinstance(sys, dict):
        raise ProtocolError("handshake reply 'sys' must be an object")
    return reply


def encode_kick(reason):
    """A whole type-5 package: {"reason":"<text>"}."""
    return package.encode(package.KICK, dumps({"reason": reason}))


def parse_kick(body):
    """A KICK body -> its reason (a str; empty when the body has none)."""
    obj = _loads_object(body, "kick")
    reason = obj.get("reason", "")
    return reason if isinstance(reason, str) else str(reason)
