"""Pre-encoded client bytes for the load tool, and the answer scanner (pure: no sockets).

The load tool's cost per request must stay far below a server's, so nothing is encoded per
request: every (route, request id) pair a client will ever send is built once, WebSocket mask
included, and a request on the wire is one of these constant `bytes`. Request ids are small
(1..inflight, one per in-flight slot) so an answer's id is one byte and names its slot.

`scan(data, ws)` walks the server's bytes (WebSocket frames, unmasked, or bare Pomelo packages)
and returns the complete packages as `(kind, start, end)` triples over `data`, without copying
bodies; the caller looks at the few bytes it needs.
"""
import json

from zpomelo.protocol import websocket
from zpomelo.protocol.handshake import encode_client_request
from zpomelo.protocol.message import encode_notify, encode_request
from zpomelo.protocol.package import DATA, HANDSHAKE_ACK_PACKAGE, HEARTBEAT_PACKAGE, encode_data

CLIENT_TYPE = "zpomelo-bench"
CLIENT_VERSION = "0.2.0"
MAX_INFLIGHT = 127                # ids 1..127 fit in one varint byte

# what scan() reports for each complete package
RESPONSE, PUSH, HEARTBEAT, HANDSHAKE, KICK, CLOSE, OTHER = range(7)
_DATA_KIND = {0: OTHER, 1: OTHER, 2: RESPONSE, 3: PUSH}


class Framer:
    """Client-to-server framing of whole Pomelo packages for one transport ("ws" or "tcp")."""

    def __init__(self, transport):
        self.ws = transport == "ws"

    def frame(self, pkg):
        """A package as sent: masked (random key, fixed per template) in a WebSocket frame."""
        return websocket.encode_frame(pkg, mask=True) if self.ws else pkg

    def upgrade(self, host, port):
        """The HTTP upgrade request (WebSocket only) -> (bytes, key)."""
        return websocket.client_request("%s:%d" % (host, port))

    def handshake(self, dict_version=None):
        sys = {"type": CLIENT_TYPE, "version": CLIENT_VERSION, "protoVersion": 0}
        if dict_version is not None:
            sys["dictVersion"] = dict_version
        return self.frame(encode_client_request(sys))

    def handshake_ack(self):
        return self.frame(HANDSHAKE_ACK_PACKAGE)

    def heartbeat(self):
        return self.frame(HEARTBEAT_PACKAGE)

    def close(self):
        """WebSocket: a masked CLOSE frame (1000); TCP: nothing (the socket is just closed)."""
        if not self.ws:
            return b""
        return websocket.encode_frame(websocket.CLOSE_NORMAL.to_bytes(2, "big"),
                                      opcode=websocket.CLOSE, mask=True)


def route_field(route, route_to_code):
    """The route as the client sends it: its dictionary code when the server gave one."""
    code = (route_to_code or {}).get(route)
    return code if isinstance(code, int) else route


def json_bytes(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def request_frames(framer, route, body, slots, route_to_code=None):
    """Frame i (0-based) is the request with id i + 1: the constant bytes of one in-flight slot."""
    if not 1 <= slots <= MAX_INFLIGHT:
        raise ValueError("in-flight requests per client must be in 1..%d" % MAX_INFLIGHT)
    field = route_field(route, route_to_code)
    payload = json_bytes(body)
    return [framer.frame(encode_data(encode_request(i + 1, field, payload))) for i in range(slots)]


def request_frame(framer, msg_id, route, body, route_to_code=None):
    return framer.frame(encode_data(encode_request(msg_id, route_field(route, route_to_code),
                                                   json_bytes(body))))


def notify_frame(framer, route, body, route_to_code=None):
    return framer.frame(encode_data(encode_notify(route_field(route, route_to_code), json_bytes(body))))


def data_offset(data, start):
    """Where the body of the DATA package at `start` begins (after flag, id and route)."""
    flag = data[start + 4]
    pos = start + 5
    mtype = (flag >> 1) & 7
    if mtype in (0, 2):                      # request/response: id varint
        while data[pos] & 0x80:
            pos += 1
        pos += 1
    if mtype in (0, 1, 3):                   # request/notify/push: route
        pos += 2 if flag & 1 else 1 + data[pos]
    return pos


def scan(data, ws, n=None, count_pushes=False):
    """Complete packages in `data[:n]` -> (list of (kind, start, end), bytes consumed, pushes).

    `start` is the package header's offset (the body starts at start + 4), `end` its end. For a
    RESPONSE the id is `data[start + 5]` (ids stay below 128). A WebSocket close frame is reported
    as CLOSE. Incomplete input at the end is left for the next call (not consumed).

    With `count_pushes`, PUSH packages are counted (`pushes`) instead of listed: a client that
    only counts its pushes pays a few byte reads per push, no tuple and no callback (fan-out
    delivers each push to hundreds of clients, and the tool must stay cheaper than the server).
    """
    out = []
    pushes = 0
    if n is None:
        n = len(data)
    pos = 0
    if ws:
        while n - pos >= 2:
            b1 = data[pos + 1] & 0x7F
            if b1 < 126:
                head = 2
            elif b1 == 126:
                if n - pos < 4:
                    break
                b1 = (data[pos + 2] << 8) | data[pos + 3]
                head = 4
            else:
                if n - pos < 10:
                    break
                b1 = int.from_bytes(data[pos + 2:pos + 10], "big")
                head = 10
            end = pos + head + b1
            if end > n:
                break
            opcode = data[pos] & 0x0F
            if opcode == 1 or opcode == 2 or opcode == 0:
                pushes += _packages(data, pos + head, end, out, count_pushes)
            elif opcode == 8:
                out.append((CLOSE, pos + head, end))
            pos = end
        return out, pos, pushes
    while n - pos >= 4:
        end = pos + 4 + ((data[pos + 1] << 16) | (data[pos + 2] << 8) | data[pos + 3])
        if end > n:
            break
        pushes += _packages(data, pos, end, out, count_pushes)
        pos = end
    return out, pos, pushes


def _packages(data, pos, end, out, count_pushes):
    """List the packages in data[pos:end] (a frame, or one bare package) -> pushes counted."""
    pushes = 0
    while pos + 4 <= end:
        ptype = data[pos]
        stop = pos + 4 + ((data[pos + 1] << 16) | (data[pos + 2] << 8) | data[pos + 3])
        if ptype == DATA:
            if count_pushes and data[pos + 4] & 0x0E == 0x06:
                pushes += 1
            else:
                out.append((_DATA_KIND[(data[pos + 4] >> 1) & 3], pos, stop))
        elif ptype == 3:
            out.append((HEARTBEAT, pos, stop))
        elif ptype == 1:
            out.append((HANDSHAKE, pos, stop))
        elif ptype == 5:
            out.append((KICK, pos, stop))
        pos = stop
    return pushes
