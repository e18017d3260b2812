"""Prometheus families of one server, built when /metrics is scraped (needs prometheus_client).

Nothing here runs per request: every family reads counters that exist anyway (``app.stats``, the
RPC server's, the bus's and the pushes' ``stats``, the frontend's sessions) at scrape time.
Names and labels are the table in README "Operating a cluster".
"""
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)
from prometheus_client.registry import Collector

PREFIX = "zpomelo_"


def histogram(name, doc, labels, rows):
    """rows: (label values, stats.Latency)."""
    family = HistogramMetricFamily(PREFIX + name, doc, labels=labels)
    for values, latency in rows:
        family.add_metric(list(values), latency.cumulative(), latency.sum)
    return family


def counter(name, doc, labels, rows):
    family = CounterMetricFamily(PREFIX + name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(list(values), value)
    return family


def gauge(name, doc, labels, rows):
    family = GaugeMetricFamily(PREFIX + name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(list(values), value)
    return family


def by_type(sizes):
    return [((server_type,), n) for server_type, n in sorted(sizes.items())]


class ServerCollector(Collector):
    """Every zpomelo family of one Application (``app``) and its ``AppMetrics`` (``metrics``)."""

    def __init__(self, app, metrics):
        self.app = app
        self.metrics = metrics

    def collect(self):
        yield from self._handlers()
        yield from self._rpc_client()
        yield from self._rpc_server()
        yield from self._frontend()
        yield from self._pushes()
        yield gauge("membership_servers", "servers of each type this server knows (itself included)",
                    ["server_type"], by_type(self.metrics.membership_sizes()))

    def _handlers(self):
        rows = [((route, status), latency)
                for route, status, latency in self.metrics.handlers.items()]
        yield histogram("handler_seconds", "handler run time by route and status (ok: answered, "
                        "error: the handler or a filter raised)", ["route", "status"], rows)

    def _rpc_client(self):
        merged = self.metrics.rpc.by_type()
        keys = sorted(merged)
        labels = ["target_type", "method"]
        yield histogram("rpc_client_seconds", "outgoing RPC calls answered (result or error): "
                        "round trip by target server type and method", labels,
                        [(k, merged[k].latency) for k in keys])
        yield counter("rpc_client_errors", "outgoing RPC calls answered with an error", labels,
                      [(k, merged[k].errors) for k in keys])
        yield counter("rpc_client_timeouts", "outgoing RPC calls with no answer in time", labels,
                      [(k, merged[k].timeouts) for k in keys])
        yield counter("rpc_client_gone", "outgoing RPC calls failed because the target server was "
                      "gone or its connection dropped (outcome unknown), or its send queue was full (not sent)",
                      labels,
                      [(k, merged[k].gone) for k in keys])

    def _rpc_server(self):
        server = self.app.rpc_server
        if server is None:
            return
        yield gauge("rpc_server_pool_busy", "RPC calls this server runs now", [],
                    [((), server.in_flight)])
        yield gauge("rpc_server_pool_size", "RPC calls this server runs at most at once "
                    "(rpcPoolSize)", [], [((), server.pool_size)])
        stats = server.stats
        yield counter("rpc_server_requests", "RPC calls (with an answer) received", [],
                      [((), stats.get("requests", 0))])
        yield counter("rpc_server_notifies", "RPC notifies received", [],
                      [((), stats.get("notifies", 0))])
        yield counter("rpc_server_backpressure_waits", "times the RPC reader waited for a free "
                      "pool slot", [], [((), stats.get("backpressure_waits", 0))])

    def _frontend(self):
        frontend = self.app.frontend
        in_flight = [(("rpc",), self.app.rpc_server.in_flight if self.app.rpc_server else 0)]
        if frontend is not None:
            in_flight += [(("local",), len(frontend.pool)), (("forwarded",), frontend.forwarding)]
        yield gauge("requests_in_flight", "requests being handled now: local (a frontend's own "
                    "handlers), forwarded (a frontend waiting for its backend), rpc (calls this "
                    "server runs, forwarded requests included)", ["kind"], in_flight)
        if frontend is None:
            return
        yield gauge("clients_connected", "client connections with a session", [],
                    [((), len(frontend.sessions))])
        yield counter("handshakes", "client handshakes by result code (200 ok, 500 refused, "
                      "501 client too old)", ["code"],
                      [((str(code),), n) for code, n in sorted(frontend.handshakes.items())])
        yield counter("kicks", "clients kicked, by reason", ["reason"],
                      sorted(((reason,), n) for reason, n in frontend.kicks.counts.items()))
        connector = self.app.connector
        if connector is not None:
            yield counter("bad_input", "bad client input by kind (connection closed or request "
                          "refused)", ["kind"],
                          sorted(((kind,), n) for kind, n in connector.bad_input.counts.items()))
            limited = getattr(connector, "rate_limited", None) or {}
            yield counter("rate_limited", "client requests refused by the rate limits, by kind",
                          ["kind"], sorted(((str(kind),), n) for kind, n in limited.items()))

    def _pushes(self):
        pushes = self.app.pushes.stats
        yield counter("pushes_sent", "push messages sent (one per send, whatever the number of "
                      "frontends and users)", [], [((), pushes.get("sent", 0))])
        yield counter("pushes_lost", "push messages that could not reach a frontend", [],
                      [((), pushes.get("lost", 0))])
        yield counter("push_fallbacks", "push messages sent over RPC because the bus had no "
                      "subscription for the frontend yet", [], [((), pushes.get("fallbacks", 0))])
        bus = self.app.bus
        if bus is not None:
            yield counter("bus_published", "messages published on this server's push bus", [],
                          [((), bus.stats.get("published", 0))])
            yield counter("bus_received", "messages received from other servers' push buses", [],
                          [((), bus.stats.get("received", 0))])
            yield counter("bus_dropped", "pushes the bus dropped (a frontend's queue at the high water "
                          "mark)",
                          [], [((), bus.stats.get("dropped", 0))])
