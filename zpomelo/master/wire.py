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
