"""What a server tells the master's web console: per-route handler latencies, RPC calls by
target, the users online on a frontend, and the last lines of its own log.

The numbers are gathered here, in the server that runs the handler or makes the call, and read
by the master over the control channel it already has with every server (the ``report`` master
command), so a server on another host is watched the same way as a local one. Recording costs
two clock reads and a dict lookup per request; nothing is sent until the master asks.
"""
import logging
import os
import time
from collections import deque

# latencies kept per route/target for the p99: the most recent ones, so it follows the present
RECENT_SAMPLES = 1024
MAX_KEYS = 2000         # distinct routes/targets kept; beyond this, new keys count under "other"
MAX_USERS = 1000        # users one frontend reports per request
MAX_LOG_LINES = 500
LOG_READ_BYTES = 256 * 1024

REPORT = "report"       # the master command's name (master/wire.py CMD_REPORT is the same)


class LatencyStats:
    """Count, errors, min/avg/max over the life of the process, p99 over the last samples."""

    __slots__ = ("count", "errors", "total", "min", "max", "recent")

    def __init__(self):
        self.count = 0
        self.errors = 0
        self.total = 0.0
        self.min = None
        self.max = 0.0
        self.recent = deque(maxlen=RECENT_SAMPLES)

    def add(self, seconds, failed):
        self.count += 1
        if failed:
            self.errors += 1
        self.total += seconds
        if self.min is None or seconds < self.min:
            self.min = seconds
        if seconds > self.max:
            self.max = seconds
        self.recent.append(seconds)

    def summary(self):
        """Milliseconds, rounded for display."""
        ordered = sorted(self.recent)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else None
        ms = lambda v: None if v is None else round(v * 1000.0, 3)   # noqa: E731
        return {"count": self.count, "errors": self.errors, "min": ms(self.min),
                "avg": ms(self.total / self.count) if self.count else None,
                "max": ms(self.max), "p99": ms(p99)}


class _Table:
    """key -> LatencyStats, bounded: a flood of distinct keys (bad routes) cannot grow it."""

    def __init__(self):
        self.rows = {}

    def get(self, key, overflow):
        row = self.rows.get(key)
        if row is None:
            if len(self.rows) >= MAX_KEYS:
                key = overflow
                row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = LatencyStats()
        return row


class ServerStats:
    """``app.stats``: fed by HandlerService (routes), rpc_proxy and the frontend (RPC calls)."""

    def __init__(self, app):
        self.app = app
        self.routes = _Table()
        self.rpc = _Table()

    def route_done(self, route, seconds, failed):
        self.routes.get(route, "(other routes)").add(seconds, failed)

    def rpc_done(self, server_id, service, method, seconds, failed):
        self.rpc.get((server_id, service, method), ("(other)", "", "(other calls)")).add(
            seconds, failed)

    def routes_report(self):
        return [dict(stats.summary(), route=route)
                for route, stats in sorted(self.routes.rows.items())]

    def rpc_report(self):
        rows = []
        for (server_id, service, method), stats in sorted(self.rpc.rows.items()):
            record = self.app.membership.get(server_id)
            target_type = record.server_type if record is not None else None
            rows.append(dict(stats.summary(), targetType=target_type, target=server_id,
                             method="%s.%s" % (service, method) if service else method))
        return rows


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
    stats = app.stats
    if args.get("routes"):
        out["routes"] = stats.routes_report()
    if args.get("rpc"):
        out["rpc"] = stats.rpc_report()
    if args.get("users"):
        out["users"], out["usersTotal"] = online_users(app, min(int(args["users"]), MAX_USERS))
    if args.get("log"):
        out["log"] = tail_lines(log_file(), args["log"])
    return out
