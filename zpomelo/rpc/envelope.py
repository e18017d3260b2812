"""RPC envelopes: msgpack arrays that ride, several per frame, between DEALERs and a ROUTER.

Pure: no sockets, no gevent. The shapes (INTERNALS.md, "rpc/ and bus.py"):

    request  [0, call_id, service, method, args]
    notify   [1, 0, service, method, args]
    reply    [2, call_id, ok, result_or_error]     error = [type_name, code, message]

A ZeroMQ frame holds a msgpack array of envelopes (batching). Senders pack each envelope on its
own (so one unserializable value fails only its own call) and `join_frame` glues the packed
envelopes under one array header, so batching costs one concatenation and no re-packing.
Bytes that do not decode to well-formed envelopes raise `ProtocolError`, never a msgpack error.

Every value a JSON body can hold crosses intact, beyond what msgpack itself carries: an int
outside msgpack's 64-bit range travels as ext type 1 (big-endian two's complement bytes), and a
str holding a lone surrogate (JSON allows the escape "\\ud800") is packed with "surrogatepass"
(only when strict UTF-8 fails, so the usual envelope pays nothing) and unpacked the same way.
What still cannot be packed (an object msgpack does not know, nesting past msgpack's limit)
raises TypeError or ValueError with a message that says which.
"""
import msgpack

from zpomelo.errors import CODE_FAIL, ProtocolError

REQUEST = 0
NOTIFY = 1
REPLY = 2
BIG_INT = 1     # msgpack ext type: an int outside [-2**63, 2**64)


def _pack_default(obj):
    """msgpack calls this for what it cannot pack: a big int becomes ext BIG_INT."""
    if isinstance(obj, int):
        return msgpack.ExtType(BIG_INT, obj.to_bytes(obj.bit_length() // 8 + 1, "big", signed=True))
    raise TypeError("a value of type %s cannot be sent over rpc (None, bool, int, float, str, "
                    "bytes, list, tuple and dict can)" % type(obj).__name__)


def _ext_hook(code, data):
    if code == BIG_INT:
        return int.from_bytes(data, "big", signed=True)
    return msgpack.ExtType(code, data)


def packb(obj):
    """One value to msgpack bytes, with big ints and lone surrogates carried (see module doc)."""
    return _packed(_PACK, _PACK_SURROGATES, obj)


def unpackb(data):
    """The mirror of `packb`; raises msgpack's own errors for bad bytes."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook,
                           unicode_errors="surrogatepass")


# one pair per process for packb: a Packer call never yields to another greenlet
_PACK = msgpack.Packer(use_bin_type=True, default=_pack_default).pack
_PACK_SURROGATES = msgpack.Packer(use_bin_type=True, default=_pack_default,
                                  unicode_errors="surrogatepass").pack


def _packed(pack, pack_surrogates, obj):
    try:
        return pack(obj)
    except UnicodeEncodeError:
        return pack_surrogates(obj)     # a lone surrogate: rare, so only this call pays
    except ValueError as exc:
        if "recursion" in str(exc):
            raise ValueError("the value is nested too deeply for rpc (msgpack's limit is about "
                             "1000 levels)") from None
        raise


class EnvelopePacker:
    """Packs single envelopes to bytes, reusing one msgpack buffer (one per owner, not shared).

    Every method raises TypeError or ValueError (with a message that says why) for a value that
    cannot be packed; the packer stays usable afterwards.
    """

    __slots__ = ("_pack", "_pack_surrogates")

    def __init__(self):
        self._pack = msgpack.Packer(use_bin_type=True, default=_pack_default).pack
        self._pack_surrogates = msgpack.Packer(use_bin_type=True, default=_pack_default,
                                               unicode_errors="surrogatepass").pack

    def request(self, call_id, service, method, args):
        return _packed(self._pack, self._pack_surrogates, [REQUEST, call_id, service, method, args])

    def notify(self, service, method, args):
        return _packed(self._pack, self._pack_surrogates, [NOTIFY, 0, service, method, args])

    def notify_packed(self, service, method, packed_args):
        """A notify whose args are already msgpack bytes (a packed array): spliced in as they
        are, so a payload packed once (a push) is not packed again inside the envelope."""
        pack = self._pack
        return b"\x95" + pack(NOTIFY) + pack(0) + pack(service) + pack(method) + packed_args

    def reply(self, call_id, result):
        return _packed(self._pack, self._pack_surrogates, [REPLY, call_id, True, result])

    def error(self, call_id, type_name, code, message):
        return _packed(self._pack, self._pack_surrogates,
                       [REPLY, call_id, False, [type_name, code, message]])

    def error_from(self, call_id, exc):
        return self.error(call_id, *error_of(exc))


def error_of(exc):
    """[type_name, code, message] for an exception: its class name, its int `code` (else 500)."""
    code = getattr(exc, "code", CODE_FAIL)
    if not isinstance(code, int) or isinstance(code, bool):
        code = CODE_FAIL
    return [type(exc).__name__, code, str(exc)]


def array_header(count):
    """The msgpack header of an array of `count` items."""
    if count < 16:
        return bytes((0x90 | count,))
    if count < 0x10000:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def join_frame(packed_envelopes):
    """One frame from already packed envelopes (a list of bytes)."""
    return array_header(len(packed_envelopes)) + b"".join(packed_envelopes)


def pack_frame(envelopes):
    """One frame from envelope lists (convenience for tests and tools)."""
    return msgpack.packb(list(envelopes), use_bin_type=True)


def _unpack_frame(frame):
    try:
        envelopes = unpackb(frame)
    except Exception as exc:  # msgpack raises ValueError, ExtraData, FormatError, StackError...
        raise ProtocolError(
            "rpc frame of %d bytes is not valid msgpack: %s: %s" % (len(frame), type(exc).__name__, exc)
        ) from exc
    if not isinstance(envelopes, list):
        raise ProtocolError("rpc frame must be a msgpack array of envelopes, got %s" % type(envelopes).__name__)
    return envelopes


def _bad(index, env, why):
    text = repr(env)
    if len(text) > 120:
        text = text[:117] + "..."
    return ProtocolError("rpc envelope #%d %s: %s" % (index, why, text))


def unpack_requests(frame):
    """Frame -> list of validated request/notify envelopes [kind, call_id, service, method, args].

    The returned items are the decoded lists themselves (no copies). Raises ProtocolError when any
    envelope is malformed: a frame is accepted or dropped whole.
    """
    envelopes = _unpack_frame(frame)
    for index, env in enumerate(envelopes):
        if type(env) is not list or len(env) != 5:
            raise _bad(index, env, "is not a 5-item request/notify array")
        kind, call_id, service, method, _args = env
        if kind != REQUEST and kind != NOTIFY:
            raise _bad(index, env, "has kind %r where a request (0) or notify (1) was expected" % (kind,))
        if type(call_id) is not int or type(service) is not str or type(method) is not str:
            raise _bad(index, env, "needs an int call id and str service and method")
    return envelopes


def unpack_replies(frame):
    """Frame -> list of validated reply envelopes [2, call_id, ok, result_or_error].

    For ok=False the last item is [type_name: str, code: int, message: str]. Raises ProtocolError
    when any envelope is malformed.
    """
    envelopes = _unpack_frame(frame)
    for index, env in enumerate(envelopes):
        if type(env) is not list or len(env) != 4:
            raise _bad(index, env, "is not a 4-item reply array")
        kind, call_id, ok, value = env
        if kind != REPLY:
            raise _bad(index, env, "has kind %r where a reply (2) was expected" % (kind,))
        if type(call_id) is not int or type(ok) is not bool:
            raise _bad(index, env, "needs an int call id and a bool ok flag")
        if not ok and (
            type(value) is not list
            or len(value) != 3
            or type(value[0]) is not str
            or type(value[1]) is not int
            or type(value[2]) is not str
        ):
            raise _bad(index, env, "carries an error that is not [type_name, code, message]")
    return envelopes
