"""RFC 6455 WebSocket pieces: the HTTP upgrade, frame encoding and an incremental frame decoder.

Pure bytes in, bytes out: no sockets. The server connector (zpomelo.connector.ws) and the client
(zpomelo.client) both use it; clients encode with ``mask=True``.

Text messages are handed over as bytes without UTF-8 validation: Pomelo carries binary packages in
both kinds of message, so the payload is never treated as text here.
"""
import base64
import hashlib
import os

from zpomelo.errors import ProtocolError

CONTINUATION = 0x0
TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
PONG = 0xA

_DATA_OPCODES = (TEXT, BINARY)
_CONTROL_OPCODES = (CLOSE, PING, PONG)
_MAX_CONTROL_PAYLOAD = 125

# Close status codes (RFC 6455 section 7.4.1).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009

MAGIC_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HEADER_END = b"\r\n\r\n"
MAX_REQUEST_HEADER = 8192
HTTP_METHODS = (b"GET", b"POST", b"PUT", b"DELETE", b"HEAD")


def accept_key(key):
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key (str or bytes) -> str."""
    if isinstance(key, str):
        key = key.encode("latin-1")
    return base64.b64encode(hashlib.sha1(key.strip() + MAGIC_GUID).digest()).decode("ascii")


def new_key():
    """A fresh random Sec-WebSocket-Key for a client handshake -> str."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def _parse_http_head(head):
    """Split an HTTP head (without the blank line) into (first_line, {lowercase name: value})."""
    try:
        text = head.decode("latin-1")
    except Exception:  # pragma: no cover - latin-1 decodes every byte
        raise ProtocolError("HTTP head is not text")
    lines = text.split("\r\n")
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ProtocolError("malformed HTTP header line %r" % line[:80])
        name = name.lower()
        value = value.strip()
        if name in headers:  # repeated headers fold into one comma-separated value
            headers[name] = headers[name] + ", " + value
        else:
            headers[name] = value
    return lines[0], headers


def _has_token(value, token):
    value = value.lower()
    if value == token:      # what browsers and most clients send
        return True
    return any(part.strip() == token for part in value.split(","))


def parse_upgrade(request_bytes):
    """Validate a client's HTTP upgrade request and return its headers.

    ``request_bytes`` is the request head, with or without the final blank line. Returns a dict of
    lowercase header names -> values, plus ``":method"`` and ``":path"``. Raises ``ProtocolError``
    unless it is a GET with ``Upgrade: websocket``, a ``Sec-WebSocket-Key`` and version 13.
    Any URL path is accepted.
    """
    head = bytes(request_bytes)
    end = head.find(HEADER_END)
    if end >= 0:
        head = head[:end]
    first, headers = _parse_http_head(head)
    parts = first.split(" ")
    if len(parts) != 3:
        raise ProtocolError("malformed HTTP request line %r" % first[:80])
    method, path, version = parts
    if method != "GET":
        raise ProtocolError("a WebSocket upgrade must use GET, not %r" % method[:16])
    if not version.startswith("HTTP/") or version in ("HTTP/0.9", "HTTP/1.0"):
        raise ProtocolError("a WebSocket upgrade needs HTTP/1.1, got %r" % version[:16])
    if not _has_token(headers.get("upgrade", ""), "websocket"):
        raise ProtocolError("not a WebSocket upgrade: missing 'Upgrade: websocket'")
    if not headers.get("sec-websocket-key"):
        raise ProtocolError("WebSocket upgrade without Sec-WebSocket-Key")
    if headers.get("sec-websocket-version") != "13":
        raise ProtocolError("unsupported WebSocket version %r (need 13)"
                            % headers.get("sec-websocket-version"))
    headers[":method"] = method
    headers[":path"] = path
    return headers


def upgrade_response(key):
    """The 101 Switching Protocols response bytes for a client's Sec-WebSocket-Key."""
    return ("HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: %s\r\n\r\n" % accept_key(key)).encode("ascii")


def error_response(status=400, reason="Bad Request", detail=""):
    """A small plain-text HTTP error response that closes the connection."""
    body = (detail or reason).encode("utf-8", "replace") + b"\n"
    head = ("HTTP/1.1 %d %s\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: %d\r\n"
            "Connection: close\r\n\r\n" % (status, reason, len(body))).encode("ascii")
    return head + body


def client_request(host, path="/", key=None, extra_headers=()):
    """The client's upgrade request bytes. Returns (request_bytes, key)."""
    key = key or new_key()
    lines = ["GET %s HTTP/1.1" % (path or "/"),
             "Host: %s" % host,
             "Upgrade: websocket",
             "Connection: Upgrade",
             "Sec-WebSocket-Key: %s" % key,
             "Sec-WebSocket-Version: 13"]
    lines.extend("%s: %s" % item for item in extra_headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), key


def check_upgrade_response(response_bytes, key):
    """Validate the server's answer to ``client_request``; returns its headers or raises."""
    head = bytes(response_bytes)
    end = head.find(HEADER_END)
    if end >= 0:
        head = head[:end]
    first, headers = _parse_http_head(head)
    parts = first.split(" ", 2)
    if len(parts) < 2 or parts[1] != "101":
        raise ProtocolError("WebSocket upgrade refused: %r" % first[:80])
    if not _has_token(headers.get("upgrade", ""), "websocket"):
        raise ProtocolError("upgrade response without 'Upgrade: websocket'")
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise ProtocolError("upgrade response has a wrong Sec-WebSocket-Accept")
    return headers


def _xor_mask(data, mask):
    """XOR ``data`` with the 4-byte ``mask`` repeated: one big-integer XOR, no per-byte loop."""
    n = len(data)
    if not n:
        return b""
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def encode_frame(payload, opcode=BINARY, mask=False, fin=True):
    """One frame (bytes). Clients must pass ``mask=True`` (a fresh random 4-byte key per frame)."""
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if mask else 0
    if n < 126:
        header = bytes((first, mask_bit | n))
    elif n < 65536:
        header = bytes((first, mask_bit | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((first, mask_bit | 127)) + n.to_bytes(8, "big")
    if mask:
        key = os.urandom(4)
        return header + key + _xor_mask(payload, key)
    return header + payload


def encode_close(code=CLOSE_NORMAL, reason=""):
    """A whole unmasked CLOSE frame carrying a status code and a short reason."""
    payload = code.to_bytes(2, "big") + reason.encode("utf-8")[:_MAX_CONTROL_PAYLOAD - 2]
    return encode_frame(payload, CLOSE)


def parse_close(payload):
    """(code, reason) from a CLOSE frame's payload; (None, "") when it carries no code."""
    if len(payload) < 2:
        return None, ""
    return int.from_bytes(payload[:2], "big"), bytes(payload[2:]).decode("utf-8", "replace")


class FrameDecoder:
    """Incremental frame parser: ``feed(data) -> list[(opcode, payload)]`` of whole messages.

    Fragmented messages are reassembled and returned with their first frame's opcode (TEXT or
    BINARY); control frames (CLOSE, PING, PONG) are returned as they arrive, also between
    fragments. Masked payloads are unmasked. ``max_payload`` bounds a whole message (raises
    ``ProtocolError`` as soon as a header announces more, so memory stays bounded);
    ``require_mask=True`` (servers) rejects unmasked frames.
    """

    __slots__ = ("max_payload", "require_mask", "_chunks", "_have", "_need",
                 "_frag_opcode", "_frag", "_frag_len")

    def __init__(self, max_payload=65536, require_mask=False):
        self.max_payload = max_payload
        self.require_mask = require_mask
        self._chunks = []      # unparsed input, joined only once enough has arrived
        self._have = 0
        self._need = 2         # bytes needed before parsing can make progress
        self._frag_opcode = None
        self._frag = []
        self._frag_len = 0

    def feed(self, data):
        if not data:
            return []
        chunks = self._chunks
        self._have += len(data)
        if self._have < self._need:
            chunks.append(bytes(data))
            return []
        if chunks:
            chunks.append(data)
            buf = b"".join(chunks)
            chunks.clear()
        else:
            buf = data if isinstance(data, bytes) else bytes(data)
        out = []
        pos = self._parse(buf, out)
        if pos < len(buf):
            chunks.append(buf[pos:])
            self._have = len(buf) - pos
        else:
            self._have = 0
        return out

    def _parse(self, buf, out):
        end = len(buf)
        pos = 0
        max_payload = self.max_payload
        while True:
            if end - pos < 2:
                self._need = 2
                return pos
            b0 = buf[pos]
            b1 = buf[pos + 1]
            if b0 & 0x70:
                raise ProtocolError("WebSocket frame with reserved bits set (no extension agreed)")
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            masked = b1 & 0x80
            length = b1 & 0x7F
            header = 2
            if length == 126:
                header = 4
                if end - pos < 4:
                    self._need = 4
                    return pos
                length = int.from_bytes(buf[pos + 2:pos + 4], "big")
            elif length == 127:
                header = 10
                if end - pos < 10:
                    self._need = 10
                    return pos
                length = int.from_bytes(buf[pos + 2:pos + 10], "big")
                if length >> 63:
                    raise ProtocolError("WebSocket frame length has the high bit set")
            if opcode in _DATA_OPCODES:
                if self._frag_opcode is not None:
                    raise ProtocolError("new WebSocket message before the fragmented one ended")
                total = length
            elif opcode == CONTINUATION:
                if self._frag_opcode is None:
                    raise ProtocolError("WebSocket continuation frame without a message to continue")
                total = self._frag_len + length
            elif opcode in _CONTROL_OPCODES:
                if not fin:
                    raise ProtocolError("fragmented WebSocket control frame")
                if length > _MAX_CONTROL_PAYLOAD:
                    raise ProtocolError("WebSocket control frame longer than 125 bytes")
                total = length
            else:
                raise ProtocolError("unknown WebSocket opcode %d" % opcode)
            if total > max_payload:
                raise ProtocolError("WebSocket message of %d bytes exceeds the limit of %d"
                                    % (total, max_payload))
            if masked:
                header += 4
            elif self.require_mask:
                raise ProtocolError("unmasked WebSocket frame from a client")
            frame_end = pos + header + length
            if frame_end > end:
                self._need = frame_end - pos
                return pos
            if masked:
                payload = _xor_mask(buf[pos + header:frame_end], buf[pos + header - 4:pos + header])
            else:
                payload = buf[pos + header:frame_end]
            pos = frame_end
            if opcode == CONTINUATION:
                self._frag.append(payload)
                self._frag_len = total
                if fin:
                    out.append((self._frag_opcode, b"".join(self._frag)))
                    self._frag_opcode = None
                    self._frag = []
                    self._frag_len = 0
            elif opcode <= BINARY and not fin:
                self._frag_opcode = opcode
                self._frag = [payload]
                self._frag_len = length
            else:
                out.append((opcode, payload))
