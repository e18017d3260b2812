"""JSON text exactly as JavaScript's ``JSON.stringify`` writes it (ECMAScript 2019 and later).

Two users need this:
- useCrypto: a Pomelo client signs ``JSON.stringify(msg)``, so the frontend must rebuild that very
  text from the parsed body to verify the signature. Python's json differs on numbers
  (``1e-07`` where JavaScript writes ``1e-7``, ``1e-06`` for ``0.000001``, exact digits of big
  ints where JavaScript first rounds to a double), on lone surrogates (JavaScript escapes them)
  and on key order (JavaScript puts integer-like keys first, ascending).
- bodies Python's fast encoder refuses (NaN or Infinity, a str holding a lone surrogate): written
  the way a Pomelo server would (``null``, a ``\\udXXX`` escape) instead of failing the answer;
  there ``python_numbers=True`` writes finite numbers as the fast encoder does (ints exact,
  floats by repr), so only what it refused changes.

Pure and slower than ``json``: used only for signed requests and as the fallback.
"""
import json
import math
import re
from decimal import Decimal

_encode_basestring = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.py_encode_basestring
# a high+low pair (one astral character in JavaScript's UTF-16) or a lone surrogate
_SURROGATES = re.compile("[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]")
_ARRAY_INDEX = re.compile(r"(?:0|[1-9][0-9]{0,9})\Z")
_MAX_ARRAY_INDEX = 2 ** 32 - 2


def is_array_index(key):
    """True for the keys a JavaScript object lists first: canonical integers 0..2^32-2."""
    return _ARRAY_INDEX.match(key) is not None and int(key) <= _MAX_ARRAY_INDEX


def _surrogate(match):
    text = match.group()
    if len(text) == 2:      # a pair JavaScript would see as one character: write that character
        high, low = ord(text[0]), ord(text[1])
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    return "\\u%04x" % ord(text)


def quote(text):
    """A JSON string literal as JSON.stringify writes it: \\b \\t \\n \\f \\r \\" \\\\, other control
    characters and lone surrogates as lowercase \\u00XX escapes, everything else as it is."""
    quoted = _encode_basestring(text)
    if _SURROGATES.search(quoted) is None:
        return quoted
    return _SURROGATES.sub(_surrogate, quoted)


def number(value):
    """JavaScript's Number::toString of the double nearest to ``value`` (an int or float);
    ``null`` for NaN and the infinities, as JSON.stringify writes them."""
    try:
        value = float(value)
    except OverflowError:       # an int past the double range is Infinity in JavaScript
        return "null"
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "0"              # -0 too
    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that round-trip, as ECMAScript asks of Number::toString
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple))
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    n = k + exponent            # value = 0.digits * 10**n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = "%se%s%d" % (mantissa, "+" if e >= 0 else "-", abs(e))
    return sign + text


def _key(key):
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return json.dumps(key)
    if isinstance(key, (int, float)):
        return number(key)
    raise TypeError("an object key of type %s has no JSON form" % type(key).__name__)


def _ordered(obj):
    """(key str, value) pairs in JavaScript's property order: array-index keys ascending, then the
    other keys in insertion order."""
    indexed, named = [], []
    for key, value in obj.items():
        key = _key(key)
        if is_array_index(key):
            indexed.append((int(key), key, value))
        else:
            named.append((key, value))
    if not indexed:
        return named
    indexed.sort(key=lambda item: item[0])
    return [(key, value) for _, key, value in indexed] + named


def js_key_order(value):
    """A copy of ``value`` whose dicts list their keys in JavaScript's property order (keys made
    str), for code that hands the structure on rather than writing it."""
    if isinstance(value, dict):
        return {key: js_key_order(item) for key, item in _ordered(value)}
    if isinstance(value, (list, tuple)):
        return [js_key_order(item) for item in value]
    return value


def stringify(obj, python_numbers=False):
    """``obj`` (None, bool, int, float, str, list, tuple, dict) -> the str JSON.stringify writes.

    ``python_numbers=True`` writes ints with all their digits and finite floats by repr, as
    Python's json does, instead of JavaScript's number form. Raises TypeError for other types and
    RecursionError past Python's nesting limit."""
    parts = []
    _write(obj, parts.append, python_numbers)
    return "".join(parts)


def _python_number(value):
    if isinstance(value, int):
        return int.__repr__(value)
    return float.__repr__(value) if math.isfinite(value) else "null"


def _write(obj, out, python_numbers):
    if obj is None:
        out("null")
    elif obj is True:
        out("true")
    elif obj is False:
        out("false")
    elif isinstance(obj, str):
        out(quote(obj))
    elif isinstance(obj, (int, float)):
        out(_python_number(obj) if python_numbers else number(obj))
    elif isinstance(obj, dict):
        out("{")
        first = True
        for key, value in _ordered(obj):
            if not first:
                out(",")
            first = False
            out(quote(key))
            out(":")
            _write(value, out, python_numbers)
        out("}")
    elif isinstance(obj, (list, tuple)):
        out("[")
        for index, value in enumerate(obj):
            if index:
                out(",")
            _write(value, out, python_numbers)
        out("]")
    else:
        raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)
