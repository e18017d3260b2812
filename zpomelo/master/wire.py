"""The master's wire protocol: one msgpack array per ZeroMQ frame, on the master's ROUTER.

Server agent (DEALER) -> master:
    ["register", record]            -> ["welcome", [records], authoritative: bool]
    ["hb", server_id]               -> nothing, or ["reregister"] when the master does not know it
    ["unregister", server_id]       a graceful stop: no restart
    ["result", req_id, ok, value]   the answer to a "cmd"
Master -> server agent:
    ["add", record]  ["remove", server_id]  ["sync", [records]]  (sync = the whole membership)
    ["cmd", req_id, name, args]     name: "stop", "kill", "info", "after_start_all", "reload"
Admin client (DEALER) -> master:
    ["admin", username, password, verb, args]   -> ["ok", result] or ["error", message]

With masterHA every message of a master and of a server agent carries one more trailing field,
the master's epoch (see master/ha.py): a server refuses a master message whose epoch is older than
the newest it knows, and a master that hears of a newer epoch steps down. Without masterHA the
field is absent and nothing changes.

Every frame, both ways, is sealed with the cluster secret (Sealer below):
    b"Z1" | HMAC-SHA256 (32 bytes) | timestamp, ms since the epoch (8, big-endian) | nonce (12) | body
where body is the msgpack array above and the HMAC covers timestamp + nonce + body, keyed by a key
derived from the secret for the direction (to the master / from the master), so a message cannot
be reflected back to its sender. The receiver drops a frame whose HMAC is wrong, whose timestamp is
more than MAX_SKEW away from its clock, or whose nonce it has seen within that window (a replay).
The one frame that is not sealed: the master's answer to an unauthenticated frame,
["error", UNAUTHENTICATED_MESSAGE], which tells a misconfigured peer what is wrong and nothing else.
The masterHA epoch rides inside the sealed body, so it is authenticated like the rest.
"""
import hashlib
import hmac
import os
import time
from collections import deque

import msgpack

REGISTER = "register"
WELCOME = "welcome"
HEARTBEAT = "hb"
REREGISTER = "reregister"
UNREGISTER = "unregister"
RESULT = "result"
ADD = "add"
REMOVE = "remove"
SYNC = "sync"
CMD = "cmd"
ADMIN = "admin"
OK = "ok"
ERROR = "error"

# Commands the master sends to servers.
CMD_STOP = "stop"
CMD_KILL = "kill"
CMD_INFO = "info"
CMD_AFTER_START_ALL = "after_start_all"
CMD_REPORT = "report"       # the console's numbers from one server (zpomelo/reports.py)


# Where the epoch sits in each kind of message (the number of fields before it).
EPOCH_AT = {REGISTER: 2, WELCOME: 3, HEARTBEAT: 2, REREGISTER: 1, UNREGISTER: 2, RESULT: 4,
            ADD: 2, REMOVE: 2, SYNC: 2, CMD: 4}


def epoch_of(msg):
    """The epoch a message carries, or None."""
    at = EPOCH_AT.get(msg[0])
    if at is None or len(msg) <= at:
        return None
    epoch = msg[at]
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


def with_epoch(parts, epoch):
    """parts padded to the epoch's place (None fills optional fields) and the epoch appended."""
    if epoch is None:
        return parts
    at = EPOCH_AT.get(parts[0])
    if at is None:
        return parts
    parts = list(parts[:at]) + [None] * (at - len(parts))
    return parts + [epoch]


def pack(*parts):
    return msgpack.packb(list(parts), use_bin_type=True)


def unpack(frame):
    """A decoded message (a non-empty list whose first item is a str), or None when malformed."""
    try:
        msg = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception:  # any garbage from the network: the caller logs and drops it
        return None
    if not isinstance(msg, list) or not msg or not isinstance(msg[0], str):
        return None
    return msg


# ---------------------------------------------------------------------- sealing

MAGIC = b"Z1"
MAC_SIZE = 32
NONCE_SIZE = 12
HEADER_SIZE = len(MAGIC) + MAC_SIZE + 8 + NONCE_SIZE
MAX_SKEW = 60.0             # seconds a timestamp may be off (hosts' clocks must agree this well)
TO_MASTER = b"to-master"
FROM_MASTER = b"from-master"
UNAUTHENTICATED_MESSAGE = (
    "unauthenticated: this master accepts only messages sealed with its cluster secret "
    "(config/keys/cluster.secret, the same file on every host; see `zpomelo keys`)")


class Unauthenticated(Exception):
    """A frame that is not sealed with the cluster secret, or is a replay; says why."""


def _direction_key(secret, direction):
    return hmac.new(secret, b"zpomelo master port: " + direction, hashlib.sha256).digest()


class Sealer:
    """Seals outgoing frames and opens incoming ones (one per socket end; not thread-safe)."""

    def __init__(self, secret, send_direction, receive_direction, max_skew=MAX_SKEW):
        self._send_key = _direction_key(secret, send_direction)
        self._receive_key = _direction_key(secret, receive_direction)
        self._max_skew_ms = int(max_skew * 1000)
        self._seen = set()          # nonces received within the window
        self._expiry = deque()      # (expires at ms, nonce), oldest first

    def seal(self, *parts):
        return self.seal_body(pack(*parts))

    def seal_body(self, body):
        head = int(time.time() * 1000).to_bytes(8, "big") + os.urandom(NONCE_SIZE)
        mac = hmac.new(self._send_key, head + body, hashlib.sha256).digest()
        return b"".join((MAGIC, mac, head, body))

    def open(self, frame):
        """The decoded message, or Unauthenticated; None when authentic but malformed."""
        if len(frame) <= HEADER_SIZE or not frame.startswith(MAGIC):
            raise Unauthenticated("not sealed with the cluster secret")
        mac = frame[2:2 + MAC_SIZE]
        signed = frame[2 + MAC_SIZE:]
        expected = hmac.new(self._receive_key, signed, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise Unauthenticated("bad signature (not our cluster secret)")
        sent = int.from_bytes(signed[:8], "big")
        now = int(time.time() * 1000)
        if abs(now - sent) > self._max_skew_ms:
            raise Unauthenticated("timestamp %.1f s off our clock (more than %.0f s: a replay, "
                                  "or the hosts' clocks disagree; sync them with NTP)"
                                  % ((sent - now) / 1000.0, self._max_skew_ms / 1000.0))
        nonce = signed[8:8 + NONCE_SIZE]
        expiry = self._expiry
        while expiry and expiry[0][0] < now:
            self._seen.discard(expiry.popleft()[1])
        if nonce in self._seen:
            raise Unauthenticated("replayed message (its nonce was seen already)")
        self._seen.add(nonce)
        expiry.append((max(now, sent) + self._max_skew_ms, nonce))
        return unpack(signed[8 + NONCE_SIZE:])
