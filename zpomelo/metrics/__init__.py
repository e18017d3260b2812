"""Prometheus metrics of one server: ``app.metrics`` (the optional [metrics] extra).

On when prometheus_client is installed, unless the app setting ``metrics`` is false. Then
``/metrics`` reads, when scraped (``collect.py``), counters that exist anyway: ``app.stats``
(``stats.py``: handler and RPC latencies, fed on every request whether metrics are on or not, and
also read by the admin console) and the services' own counts. The endpoint
(``endpoint.py``) listens on the server's host, port ``metricsPort`` of its record (0: any free
port; the bound port is written back into the record the master and ``zpomelo list`` see).
Without the library nothing is counted or served, and a server that asked for metrics (the
setting, or a metricsPort) says so in its log.

``snapshot()`` gives the same numbers as plain data (the admin console reads it through the
master's ``metrics`` command).
"""
import logging

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'zpomelo[metrics]'"


def library_available():
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


class AppMetrics:
    def __init__(self, app):
        self.app = app
        self.enabled = False
        self.registry = None    # the prometheus_client CollectorRegistry of this server
        self.endpoint = None
        self.port = None

    @property
    def handlers(self):
        """stats.HandlerStats: the app's own (``app.stats.handlers``)."""
        return self.app.stats.handlers

    @property
    def rpc(self):
        """stats.RpcStats: the app's own (``app.stats.rpc``)."""
        return self.app.stats.rpc

    def bind(self):
        """Decide and listen; returns the bound port or None (off).

        Called by ``Application._bind`` once the handler service and the RPC client exist.
        """
        app = self.app
        wanted = app.setting("metrics")
        port = app.current_server.extra.get("metricsPort")
        if wanted is False:
            return None
        if not library_available():
            if wanted or port is not None:
                logger.warning("%s: metrics are configured (%s) but prometheus_client is not "
                               "installed: no /metrics endpoint; %s", app.server_id,
                               "metricsPort %s" % port if port is not None else "metrics: true",
                               INSTALL_HINT)
            return None
        from prometheus_client import CollectorRegistry, ProcessCollector
        from zpomelo.metrics.collect import ServerCollector
        from zpomelo.metrics.endpoint import MetricsEndpoint

        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        registry.register(ServerCollector(app, self))
        endpoint = MetricsEndpoint(registry, app.current_server.host, int(port or 0), app.server_id)
        self.port = endpoint.bind()
        self.registry, self.endpoint = registry, endpoint
        self.enabled = True
        return self.port

    def start(self):
        if self.endpoint is not None:
            self.endpoint.start()

    def close(self):
        if self.endpoint is not None:
            self.endpoint.close()

    def membership_sizes(self):
        sizes = {}
        for record in self.app.membership.servers.values():
            sizes[record.server_type] = sizes.get(record.server_type, 0) + 1
        return sizes

    def snapshot(self):
        """Plain data: per-route and per-RPC-target latencies (count, sum, min, max, avg, p99)."""
        handlers = {}
        for route, status, latency in self.handlers.items():
            handlers.setdefault(route, {})[status] = latency.snapshot()
        rpc = []
        for (target_type, method), row in sorted(self.rpc.by_type().items()):
            rpc.append(dict(row.latency.snapshot(), targetType=target_type, method=method,
                            errors=row.errors, timeouts=row.timeouts, gone=row.gone))
        return {"enabled": self.enabled, "port": self.port, "handlers": handlers, "rpc": rpc,
                "membership": self.membership_sizes()}
