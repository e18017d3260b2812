"""A whole cluster of a project inside the test process, on real sockets bound to 127.0.0.1.

``InProcessCluster`` runs every server of a project's environment as an Application in the current
gevent process and wires their membership directly, as the master would. Each server's RPC port,
bus port and client port are bound to port 0 whatever servers.json says (a test never depends on a
fixed port being free), and read back from ``current_server``. It is fast and sees everything;
process-level behaviour (kills, the master) is tested with real processes (``ProcessCluster``).
"""
import dataclasses
import logging

from zpomelo.application import Application
from zpomelo.config import load_servers
from zpomelo.testing.waiting import wait_until

logger = logging.getLogger(__name__)

STOP_DRAIN_SECONDS = 1.0


def any_free_port(record):
    """The record with its RPC, bus, client and metrics ports set to 0 (the OS picks free ones).

    Ports the game itself reads from extra fields (a web page's port, say) are the game's to choose.
    """
    extra = dict(record.extra)
    for key in ("busPort", "metricsPort"):
        if key in extra:
            extra[key] = 0
    client_port = 0 if (record.frontend or record.client_port) else record.client_port
    return dataclasses.replace(record, port=0, client_port=client_port, extra=extra)


class InProcessCluster:
    """Every server of ``env`` in ``base_dir`` (or only the ids in ``only``), started in order.

    Use it as a context manager, or call ``start()`` and ``stop()``. If a server fails to start,
    the servers already started (and the failed one's sockets) are stopped before the error is
    raised, so a failed start leaves nothing bound behind.
    """

    def __init__(self, base_dir, env="test", only=None):
        self.base_dir = base_dir
        self.env = env
        self.records = [any_free_port(r) for r in load_servers(base_dir, env)
                        if only is None or r.id in only]
        self.apps = {}
        self.clients = []

    def start(self):
        try:
            for record in self.records:
                self._start_app(record)
            for app in self.apps.values():
                for other in self.apps.values():
                    if other is not app:
                        app.membership.add(other.current_server)
            self.wait_bus_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_app(self, record):
        app = Application(self.base_dir, self.env, record)
        self.apps[record.id] = app  # registered before start: stop() also cleans up a failed start
        app.start()
        return app

    def add(self, record):
        """Start one more server and announce it to everyone (what the master does)."""
        try:
            app = self._start_app(any_free_port(record))
        except BaseException:
            self._stop_app(self.apps.pop(record.id, None))
            raise
        for other in self.apps.values():
            if other is not app:
                app.membership.add(other.current_server)
                other.membership.add(app.current_server)
        return app

    def remove(self, server_id, stop=True):
        app = self.apps.pop(server_id)
        for other in self.apps.values():
            other.membership.remove(server_id)
        if stop:
            app.stop(drain_timeout=STOP_DRAIN_SECONDS)
        return app

    def wait_bus_ready(self, timeout=5.0):
        """Every server's bus has seen every frontend's subscription."""
        frontends = {a.server_id for a in self.apps.values() if a.is_frontend}

        def ready():
            for app in self.apps.values():
                expected = frontends - {app.server_id}
                if not expected <= set(app.bus.subscribed_frontends()):
                    return False
            return True
        wait_until(ready, timeout, message="bus subscriptions")

    def __getitem__(self, server_id):
        return self.apps[server_id]

    def __iter__(self):
        return iter(self.apps.values())

    @property
    def frontend_ids(self):
        return [server_id for server_id, app in self.apps.items() if app.is_frontend]

    def client_port(self, server_id):
        return self.apps[server_id].current_server.client_port

    def connect(self, server_id=None, transport="tcp", **options):
        """A zpomelo.client connected to a frontend's client port (the first frontend by default);
        closed by ``close_clients()`` and ``stop()``."""
        from zpomelo.client import Client
        if server_id is None:
            if not self.frontend_ids:
                raise ValueError("this cluster has no frontend server to connect to")
            server_id = self.frontend_ids[0]
        client = Client.connect("127.0.0.1", self.client_port(server_id), transport=transport, **options)
        self.clients.append(client)
        return client

    def close_clients(self):
        for client in self.clients:
            try:
                client.close()
            except Exception:
                logger.exception("closing a test client failed")
        self.clients.clear()

    def stop(self):
        """Close the clients, then stop every server, last started first."""
        self.close_clients()
        for app in reversed(list(self.apps.values())):
            self._stop_app(app)
        self.apps.clear()

    @staticmethod
    def _stop_app(app):
        if app is None:
            return
        try:
            app.stop(drain_timeout=STOP_DRAIN_SECONDS)
        except Exception:
            logger.exception("stopping %s failed", app.server_id)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
