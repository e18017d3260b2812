"""Bad input from clients, counted by kind and logged as a rate-limited summary.

One log line per malformed package let a single client write 156 MB of log with a million of
them. Here every bad input bumps a counter (``counts``: kind -> total since start, read by the
server's ``info()`` for ``zpomelo list`` and by metrics) and the log gets at most one line per
``interval`` seconds: the first bad input after a quiet interval is logged at once with its
detail (what an operator debugging one client wants to see), later ones are summed and written
as one summary line when the interval ends. A flood therefore writes about one line per interval
whatever its size.
"""
import logging
import time

import gevent

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 10.0

# The kinds the connector and the frontend count (others may be added by callers).
MALFORMED_PACKAGE = "malformed package"     # bytes that are not a Pomelo package: connection closed
BAD_HANDSHAKE = "bad handshake"             # handshake body that is not the JSON Pomelo sends
BAD_MESSAGE = "bad message"                 # a DATA package whose message cannot be decoded
BAD_BODY = "bad body"                       # a request/notify body that is not a JSON object (or
                                            # does not match its protobuf): answered with 500
SERVER_ONLY_MESSAGE = "server-only message"     # a RESPONSE or PUSH sent by a client
BAD_UPGRADE = "bad websocket upgrade"       # an HTTP request that is not a WebSocket upgrade
UNFORWARDABLE = "unforwardable notify"      # a notify whose body RPC cannot carry
BLACKLISTED = "blacklisted connection"      # refused at accept
OVER_MAX_CONNECTIONS = "connection over maxConnections"     # refused at accept


class BadInputLog:
    """Counters by kind plus the rate-limited log; one per connector."""

    def __init__(self, name, interval=DEFAULT_INTERVAL, log=logger):
        self.name = name
        self.interval = interval
        self.counts = {}
        self._log = log
        self._pending = {}          # kind -> count since the last line written
        self._latest = None         # (kind, detail) of the newest input not logged yet
        self._quiet_until = 0.0     # no line before this monotonic time
        self._timer = None

    def note(self, kind, source, detail):
        """Count one bad input of ``kind`` from ``source`` (a connection, an address)."""
        detail = str(detail)
        if len(detail) > 200:
            detail = detail[:197] + "..."
        counts = self.counts
        counts[kind] = counts.get(kind, 0) + 1
        now = time.monotonic()
        if now >= self._quiet_until and not self._pending:
            self._quiet_until = now + self.interval
            self._log.info("%s: %s from %s: %s", self.name, kind, source, detail)
            return
        self._pending[kind] = self._pending.get(kind, 0) + 1
        self._latest = (kind, source, detail)
        if self._timer is None:
            self._timer = gevent.get_hub().loop.timer(max(0.0, self._quiet_until - now))
            self._timer.start(self._flush)

    def _flush(self):
        self._timer.close()
        self._timer = None
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        kind, source, detail = self._latest
        self._latest = None
        self._quiet_until = time.monotonic() + self.interval
        summary = ", ".join("%d %s" % (n, k) for k, n in sorted(pending.items()))
        self._log.info("%s: bad input from clients in the last %g s: %s (latest: %s from %s: %s)",
                       self.name, self.interval, summary, kind, source, detail)

    def close(self):
        """Write what is pending now and stop the timer."""
        if self._timer is not None:
            self._timer.stop()
            self._flush()
