"""The per-request counters of one server: ``app.stats`` (always on, no prometheus_client).

One ``RequestStats`` per Application, fed once per request and once per RPC call:
``HandlerService.handle`` (one clock read pair around filters and handler) feeds ``handlers``;
``RpcClient`` (a pending call carries its send time; replies, the timer wheel and disconnects
report) feeds ``rpc``, and ``rpc_proxy.call`` feeds it only for a call to this same server, which
never reaches the client. Two readers, both at read time, never per request:
``metrics/collect.py`` (Prometheus families, when the library is there and metrics are on) and
``reports.py`` (the master's web console, through the ``report`` command).

The hot path pays a dict lookup, a bisect, a few additions and a deque append per observation:
no locks (one thread), no label lookups (each key's row is made once and kept), nothing
allocated after the first request of a key. The console's p99 is the exact p99 of the last
``RECENT_SAMPLES`` of a key (the buckets are too coarse for it: every value between 2.5 and 5 ms
would read 5 ms); Prometheus computes its own quantiles from the buckets.

Keys are bounded: handler rows are keyed by routes that exist (unknown routes share one row),
RPC rows by (target server, service, method) that this process called; at most ``MAX_KEYS`` rows
each, later keys share one overflow row. Reasons (kicks) have their own cap.
"""
from bisect import bisect_left
from collections import deque

# Upper bounds (seconds) of the latency buckets; the last, implicit one is +Inf.
BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
INF = float("inf")
UNKNOWN_ROUTE = "<unknown>"
OTHER = "<other>"
RECENT_SAMPLES = 1024   # latencies kept per key for the console's p99: the present, not the past
MAX_KEYS = 2000         # rows per table; beyond this, new keys share the OTHER row


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000.0, 3)


def _p99(samples):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else None


class Latency:
    """One histogram: count, sum, min, max and per-bucket counts (not cumulative)."""

    __slots__ = ("buckets", "count", "sum", "min", "max")

    def __init__(self):
        self.buckets = [0] * (len(BOUNDS) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = INF      # INF and 0.0 until the first observation (snapshot() says None)
        self.max = 0.0

    def observe(self, seconds):
        # bisect_left: a value equal to a bound belongs to that bucket (Prometheus' "le")
        self.buckets[bisect_left(BOUNDS, seconds)] += 1
        self.count += 1
        self.sum += seconds
        if seconds > self.max:
            self.max = seconds
        if seconds < self.min:
            self.min = seconds

    def merge(self, other):
        for i, n in enumerate(other.buckets):
            self.buckets[i] += n
        self.count += other.count
        self.sum += other.sum
        self.max = max(self.max, other.max)
        self.min = min(self.min, other.min)

    def cumulative(self):
        """[(upper bound text, count <= bound)] ending with "+Inf", as Prometheus writes them."""
        out, total = [], 0
        for bound, n in zip(BOUNDS + (INF,), self.buckets):
            total += n
            out.append(("+Inf" if bound == INF else repr(bound), total))
        return out

    def quantile(self, q):
        """The upper bound of the bucket holding the q-th observation (an upper estimate)."""
        if not self.count:
            return None
        rank, seen = q * self.count, 0
        for bound, n in zip(BOUNDS, self.buckets):
            seen += n
            if seen >= rank:
                return min(bound, self.max)
        return self.max

    def snapshot(self):
        return {"count": self.count, "sum": self.sum, "min": self.min if self.count else None,
                "max": self.max if self.count else None,
                "avg": self.sum / self.count if self.count else None,
                "p99": self.quantile(0.99)}


def console_summary(latency, recent, count, errors):
    """What the console shows of one row, in milliseconds rounded for display: ``count`` and
    ``errors`` as given, min/avg/max of ``latency`` (the calls that were timed), exact p99 of
    ``recent``."""
    timed = latency.count
    return {"count": count, "errors": errors, "min": _ms(latency.min) if timed else None,
            "avg": _ms(latency.sum / timed) if timed else None,
            "max": _ms(latency.max) if timed else None, "p99": _ms(_p99(recent))}


class _RouteRow:
    __slots__ = ("ok", "error", "recent")

    def __init__(self):
        self.ok = Latency()
        self.error = Latency()
        self.recent = deque(maxlen=RECENT_SAMPLES)

    def summary(self):
        both = Latency()
        both.merge(self.ok)
        both.merge(self.error)
        return console_summary(both, self.recent, both.count, self.error.count)


class HandlerStats:
    """Handler calls by route and status ("ok", or "error" when the handler or a filter raised)."""

    def __init__(self, is_route):
        self._is_route = is_route   # route -> bool, asked once per new route (reloads add routes)
        self.rows = {}      # route -> _RouteRow

    def observe(self, route, failed, seconds):
        row = self.rows.get(route)
        if row is None:
            row = self._row(route)
        (row.error if failed else row.ok).observe(seconds)
        row.recent.append(seconds)

    def _row(self, route):
        # a route with no handler (what a client made up) is not kept: all share one row
        key = route if self._is_route(route) else UNKNOWN_ROUTE
        if key not in self.rows and len(self.rows) >= MAX_KEYS:
            key = OTHER
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = _RouteRow()
        return row

    def items(self):
        """(route, status, Latency) for every route called."""
        for route, row in list(self.rows.items()):
            for status, latency in (("ok", row.ok), ("error", row.error)):
                if latency.count:
                    yield route, status, latency

    def console_rows(self):
        """[{route, count, errors, min, avg, max, p99}] (ms), sorted by route."""
        return [dict(row.summary(), route=route) for route, row in sorted(self.rows.items())]


class RpcStats:
    """This process's RPC calls by target server and method ("service.method").

    ``reply`` for every call answered (a result or an error), ``timeout`` for calls that got no
    answer in time, ``gone`` for calls that failed because the target was gone, its connection
    dropped or its queue was full (outcome unknown or never sent). ``type_of(server_id)`` names a
    target's type when it is first called; rows are kept per server and merged by type for
    Prometheus (``by_type``); the console shows them per server (``console_rows``).
    """

    def __init__(self, type_of):
        self._type_of = type_of
        self.rows = {}      # (server_id, service, method) -> _RpcRow

    def _row(self, server_id, service, method):
        key = (server_id, service, method)
        row = self.rows.get(key)
        if row is None:
            if len(self.rows) >= MAX_KEYS:
                key = (OTHER, "", OTHER)
                row = self.rows.get(key)
                if row is not None:
                    return row
                row = self.rows[key] = _RpcRow(OTHER, OTHER)
                return row
            row = self.rows[key] = _RpcRow(self._type_of(server_id) or "unknown",
                                           "%s.%s" % (service, method))
        return row

    def reply(self, server_id, service, method, seconds, ok):
        row = self.rows.get((server_id, service, method))
        if row is None:
            row = self._row(server_id, service, method)
        row.latency.observe(seconds)
        row.recent.append(seconds)
        if not ok:
            row.errors += 1

    def timeout(self, server_id, service, method):
        self._row(server_id, service, method).timeouts += 1

    def gone(self, server_id, service, method):
        self._row(server_id, service, method).gone += 1

    def by_type(self):
        """(target type, method) -> merged _RpcRow."""
        merged = {}
        for row in self.rows.values():
            key = (row.target_type, row.method)
            total = merged.get(key)
            if total is None:
                total = merged[key] = _RpcRow(*key)
            total.latency.merge(row.latency)
            total.errors += row.errors
            total.timeouts += row.timeouts
            total.gone += row.gone
        return merged

    def console_rows(self):
        """[{target, targetType, method, count, errors, min, avg, max, p99}] (ms): ``count`` is
        every call (answered, timed out, gone), ``errors`` every one that failed; min/avg/max/p99
        are over the answered ones."""
        rows = []
        for (server_id, _service, _method), row in sorted(self.rows.items()):
            failed = row.timeouts + row.gone
            rows.append(dict(console_summary(row.latency, row.recent, row.latency.count + failed,
                                             row.errors + failed),
                             target=server_id, targetType=row.target_type, method=row.method))
        return rows


class _RpcRow:
    __slots__ = ("target_type", "method", "latency", "recent", "errors", "timeouts", "gone")

    def __init__(self, target_type, method):
        self.target_type = target_type
        self.method = method
        self.latency = Latency()
        self.recent = deque(maxlen=RECENT_SAMPLES)
        self.errors = self.timeouts = self.gone = 0


class RequestStats:
    """``app.stats``: ``handlers`` (HandlerStats) and ``rpc`` (RpcStats) of one server."""

    def __init__(self, is_route, type_of):
        self.handlers = HandlerStats(is_route)
        self.rpc = RpcStats(type_of)


class ReasonCounter:
    """Counts by a free-text reason (a kick's), at most ``limit`` distinct ones (then OTHER)."""

    def __init__(self, limit=50):
        self.limit = limit
        self.counts = {}

    def add(self, reason):
        counts = self.counts
        if reason not in counts and len(counts) >= self.limit:
            reason = OTHER
        counts[reason] = counts.get(reason, 0) + 1
