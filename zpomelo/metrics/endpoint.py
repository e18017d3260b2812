"""One HTTP endpoint, ``GET /metrics``, served by gevent's WSGI server (needs prometheus_client).

Bound on the server's own host (its ``host`` record field, like its RPC port), port 0 or the
configured ``metricsPort``; ``bind()`` happens before the server registers, so the bound port is
in its record. Anything but /metrics gets a 404 that says where the metrics are.
"""
import logging

from gevent.pywsgi import WSGIServer
from prometheus_client import make_wsgi_app

logger = logging.getLogger(__name__)

PATH = "/metrics"


class MetricsEndpoint:
    def __init__(self, registry, host, port, name):
        self.host = host
        self.port = port
        self.name = name
        self._metrics = make_wsgi_app(registry)
        self._server = None

    def bind(self):
        """Listen (port 0: any free port); ``.port`` is the bound one. OSError names the address."""
        server = WSGIServer((self.host, self.port), self._app, log=None, error_log=logger)
        try:
            server.init_socket()
        except OSError as exc:
            raise OSError("cannot listen for /metrics on %s:%s: %s; set metricsPort to a free "
                          "port (or 0)" % (self.host, self.port, exc)) from exc
        self._server = server
        self.port = server.socket.getsockname()[1]
        return self.port

    def start(self):
        if self._server is None:
            self.bind()
        self._server.start()
        logger.info("%s: metrics on http://%s:%d%s", self.name, self.host, self.port, PATH)
        return self

    def close(self):
        if self._server is not None:
            self._server.stop(timeout=1)
            self._server = None

    def _app(self, environ, start_response):
        if environ.get("PATH_INFO") != PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found: the metrics are at /metrics\n"]
        return self._metrics(environ, start_response)
