"""Plain in-process counters that the request path feeds (no prometheus_client here).

The hot path pays a dict lookup, two additions and a bisect per observation: no locks (one
thread), no label lookups (each key's row is made once and kept), nothing allocated after the
first request of a key. ``metrics/collect.py`` turns these into Prometheus families when
``/metrics`` is scraped; the admin console can read ``snapshot()`` the same way.

Keys are bounded: handler rows are keyed by routes that exist (unknown routes share one row),
RPC rows by (target server, service, method) that this process called, reasons by a cap.
"""
from bisect import bisect_left

# Upper bounds (seconds) of the latency buckets; the last, implicit one is +Inf.
BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
INF = float("inf")
UNKNOWN_ROUTE = "<unknown>"
OTHER = "<other>"


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


class HandlerStats:
    """Handler calls by route and status ("ok", or "error" when the handler or a filter raised)."""

    def __init__(self, is_route):
        self._is_route = is_route   # route -> bool, asked once per new route (reloads add routes)
        self.rows = {}      # route -> (ok Latency, error Latency)

    def observe(self, route, failed, seconds):
        row = self.rows.get(route)
        if row is None:
            row = self._row(route)
        row[failed].observe(seconds)

    def _row(self, route):
        # a route with no handler (what a client made up) is not kept: all share one row
        key = route if self._is_route(route) else UNKNOWN_ROUTE
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = (Latency(), Latency())
        return row

    def items(self):
        """(route, status, Latency) for every route called."""
        for route, (ok, error) in list(self.rows.items()):
            for status, latency in (("ok", ok), ("error", error)):
                if latency.count:
                    yield route, status, latency


class RpcStats:
    """This process's outgoing RPC calls by target server type and method ("service.method").

    Fed by ``RpcClient.observer``: ``reply`` for every call answered (a result or an error),
    ``timeout`` and ``gone`` for calls that got no answer. ``type_of(server_id)`` names a target's
    type when it is first called; rows are kept per server and merged by type when read.
    """

    def __init__(self, type_of):
        self._type_of = type_of
        self.rows = {}      # (server_id, service, method) -> _RpcRow

    def _row(self, server_id, service, method):
        key = (server_id, service, method)
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = _RpcRow(self._type_of(server_id) or "unknown",
                                           "%s.%s" % (service, method))
        return row

    def reply(self, server_id, service, method, seconds, ok):
        row = self.rows.get((server_id, service, method))
        if row is None:
            row = self._row(server_id, service, method)
        row.latency.observe(seconds)
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


class _RpcRow:
    __slots__ = ("target_type", "method", "latency", "errors", "timeouts", "gone")

    def __init__(self, target_type, method):
        self.target_type = target_type
        self.method = method
        self.latency = Latency()
        self.errors = self.timeouts = self.gone = 0


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
