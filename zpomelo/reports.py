"""What a server tells the master's web console: per-route handler latencies, RPC calls by
target, the users online on a frontend, and the last lines of its own log.

The latencies are ``app.stats`` (metrics/stats.py: the same counters Prometheus reads), kept in
the server that runs the handler or makes the call, and read by the master over the control
channel it already has with every server (the ``report`` master command), so a server on another
host is watched the same way as a local one. Nothing is sent until the master asks.
"""
import logging
import os
import time

MAX_USERS = 1000        # users one frontend reports per request
MAX_LOG_LINES = 500
LOG_READ_BYTES = 256 * 1024

REPORT = "report"       # the master command's name (master/wire.py CMD_REPORT is the same)


def online_users(app, limit=MAX_USERS):
    """[{uid, frontend, address, loginTime}] of the bound sessions here, and how many in all."""
    if app.frontend is None:
        return [], 0
    users = []
    total = 0
    for session in list(app.frontend.sessions.sessions.values()):
        if session.uid is None:
            continue
        total += 1
        if len(users) < limit:
            address = session.address
            users.append({"uid": str(session.uid), "frontend": app.server_id,
                          "address": "%s:%s" % tuple(address[:2]) if address else None,
                          "loginTime": session.bound_at})
    return users, total


def log_file():
    """The file this process logs to (server.py's FileHandler), or None."""
    for handler in logging.getLogger().handlers:
        name = getattr(handler, "baseFilename", None)
        if name:
            return name
    return None


def tail_lines(path, lines):
    """The last ``lines`` lines of a text file (reads at most LOG_READ_BYTES from its end)."""
    lines = max(0, min(int(lines), MAX_LOG_LINES))
    if not path or not lines:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - LOG_READ_BYTES))
            data = f.read()
    except OSError:
        return []
    text = data.decode("utf-8", "replace").splitlines()
    if size > LOG_READ_BYTES and text:
        text = text[1:]     # the first line read is likely cut
    return text[-lines:]


def report(app, args):
    """The answer to the master's ``report`` command; ``args`` picks the parts:
    {"routes": bool, "rpc": bool, "users": int limit, "log": int lines}."""
    args = args if isinstance(args, dict) else {}
    out = {"id": app.server_id, "serverType": app.server_type, "time": time.time()}
    if args.get("routes"):
        out["routes"] = app.stats.handlers.console_rows()
    if args.get("rpc"):
        out["rpc"] = app.stats.rpc.console_rows()
    if args.get("users"):
        out["users"], out["usersTotal"] = online_users(app, min(int(args["users"]), MAX_USERS))
    if args.get("log"):
        out["log"] = tail_lines(log_file(), args["log"])
    return out
