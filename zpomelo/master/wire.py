"""The master's wire protocol: one msgpack array per ZeroMQ frame, on the master's ROUTER.

Server agent (DEALER) -> master:
    ["register", record]            -> ["welcome", [records], authoritative: bool]
    ["hb", server_id]               -> nothing, or ["reregister"] when the master does not know it
    ["unregister", server_id]       a graceful stop: no restart
    ["result", req_id, ok, value]   the answer to a "cmd"
Master -> server agent:
    ["add", record]  ["remove", server_id]  ["sync", [records]]  (sync = the whole membership)
    ["cmd", req_id, name, args]     name: "stop", "kill", "info", "after_start_all"
Admin client (DEALER) -> master:
    ["admin", username, password, verb, args]   -> ["ok", result] or ["error", message]

With masterHA every message of a master and of a server agent carries one more trailing field,
the master's epoch (see master/ha.py): a server refuses a master message whose epoch is older than
the newest it knows, and a master that hears of a newer epoch steps down. Without masterHA the
field is absent and nothing changes.
"""
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
