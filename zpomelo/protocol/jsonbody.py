"""JSON message bodies: compact UTF-8 JSON out (as JSON.stringify writes it), a JSON object in.

The body codec of every route without protobuf protos (codec.py), of the handshake
(handshake.py) and of requests forwarded to a backend (sysapi.py). `RawBody` keeps a request's
body undecoded until something needs the object.
"""
import json
from collections.abc import Mapping

from zpomelo.errors import BodyError, ProtocolError
from zpomelo.protocol import jsjson
from zpomelo.protocol import message as _message


def _refuse_constant(name):
    raise ValueError("%s is not a JSON value (JSON has no NaN or Infinity)" % name)


# NaN/Infinity literals are refused, as JavaScript's JSON.parse refuses them
_JSON_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_scan_json = _JSON_DECODER.scan_once


def _not_serializable(obj):
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


def _make_json_encoder():
    """obj -> compact JSON str. JSONEncoder.encode builds a new C encoder on every call; here
    the C encoder is built once (circular references end in RecursionError, which callers
    catch). Falls back to the pure-Python encoder where the C one is missing."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                                allow_nan=False).encode
    c_encode = make(None, _not_serializable, json.encoder.encode_basestring, None, ":", ",",
                    False, False, False)

    def encode(obj, _join="".join):
        return _join(c_encode(obj, 0))
    return encode


_encode_json = _make_json_encoder()


def loads(text):
    """json.loads for a str, with a fast path for the usual body (no surrounding whitespace)."""
    try:
        obj, end = _scan_json(text, 0)
        if end == len(text):
            return obj
    except StopIteration:
        pass
    return _JSON_DECODER.decode(text)    # whitespace around the value, or a precise error


def encode_json(obj, what="body"):
    """Compact UTF-8 JSON bytes of a body (separators=(',', ':'), ensure_ascii=False).

    What the fast encoder refuses but JavaScript writes (NaN and Infinity as null, a lone
    surrogate as a \\udXXX escape) goes through `jsjson` the way JSON.stringify does; anything
    else raises ProtocolError naming `what`."""
    try:
        return _encode_json(obj).encode("utf-8")
    except (ValueError, UnicodeEncodeError):    # NaN/Infinity, a lone surrogate
        pass
    except (TypeError, RecursionError) as exc:
        raise ProtocolError("%s is not JSON-encodable: %s" % (what, exc)) from None
    try:
        return jsjson.stringify(obj, python_numbers=True).encode("utf-8")
    except (TypeError, ValueError, RecursionError, UnicodeEncodeError) as exc:
        raise ProtocolError("%s is not JSON-encodable: %s" % (what, exc)) from None


def decode_json_body(body, msg_id, route):
    """A JSON object body -> dict; an empty body is {}. Raises BodyError for anything else."""
    if not body:
        return {}
    try:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = _message.decode_utf8(body)     # CESU-8 from Pomelo's browser client
        obj = loads(text)
    except (ProtocolError, ValueError, RecursionError) as exc:
        raise BodyError("body of %s is not valid UTF-8 JSON: %s" % (route, exc), msg_id,
                        route) from None
    if obj.__class__ is not dict:
        raise BodyError("body of %s must be a JSON object, got %s" % (route, type(obj).__name__),
                        msg_id, route)
    return obj


class RawBody(Mapping):
    """A request's JSON body kept as the bytes the client sent, decoded on first use.

    A frontend that only forwards a request passes ``data`` on untouched (the backend decodes
    it); whatever needs the object (a local handler, a signature check, a route function or a
    filter reading it) calls ``decode()`` (or reads it as a read-only mapping), which raises
    ``BodyError`` for a body that is not a UTF-8 JSON object, as ``ServerCodec.decode`` would.
    """

    __slots__ = ("data", "msg_id", "route", "_obj")

    def __init__(self, data, msg_id, route):
        self.data = data
        self.msg_id = msg_id
        self.route = route
        self._obj = None

    def decode(self):
        obj = self._obj
        if obj is None:
            obj = self._obj = decode_json_body(self.data, self.msg_id, self.route)
        return obj

    def __getitem__(self, key):
        return self.decode()[key]

    def __iter__(self):
        return iter(self.decode())

    def __len__(self):
        return len(self.decode())

    def __repr__(self):
        return "RawBody(%r)" % (self.data[:64],)
