"""Helpers for testing game code and zpomelo itself against real sockets on 127.0.0.1.

``InProcessCluster`` runs every server of a project's environment as an Application inside the
current gevent process (each with its own ROUTER, bus and client port, all bound to port 0) and
wires their membership directly. It is fast and sees everything; process-level behaviour (kills,
the master) is tested with real processes instead.
"""
import logging
import time

import gevent

from zpomelo.application import Application
from zpomelo.config import load_servers

logger = logging.getLogger(__name__)


def wait_until(predicate, timeout=5.0, interval=0.005, message="condition"):
    """Poll ``predicate`` until it is true or ``timeout`` passes (then AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, message))
        gevent.sleep(interval)


class InProcessCluster:
    def __init__(self, base_dir, env="test", only=None):
        self.base_dir = base_dir
        self.env = env
        self.records = [r for r in load_servers(base_dir, env) if only is None or r.id in only]
        self.apps = {}
        self.clients = []

    def start(self):
        for record in self.records:
            app = Application(self.base_dir, self.env, record)
            app.start()
            self.apps[record.id] = app
        for app in self.apps.values():
            for other in self.apps.values():
                if other is not app:
                    app.membership.add(other.current_server)
        self.wait_bus_ready()
        return self

    def add(self, record):
        """Start one more server and announce it to everyone (what the master does)."""
        app = Application(self.base_dir, self.env, record)
        app.start()
        for other in self.apps.values():
            app.membership.add(other.current_server)
            other.membership.add(app.current_server)
        self.apps[record.id] = app
        return app

    def remove(self, server_id, stop=True):
        app = self.apps.pop(server_id)
        for other in self.apps.values():
            other.membership.remove(server_id)
        if stop:
            app.stop(drain_timeout=1.0)
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

    def client_port(self, server_id):
        return self.apps[server_id].current_server.client_port

    def connect(self, server_id, transport="tcp", **options):
        """A zpomelo.client connected to a frontend's client port; closed by ``stop()``."""
        from zpomelo.client import Client
        client = Client.connect("127.0.0.1", self.client_port(server_id), transport=transport, **options)
        self.clients.append(client)
        return client

    def close_clients(self):
        for client in self.clients:
            client.close()
        self.clients.clear()

    def stop(self):
        self.close_clients()
        for app in reversed(list(self.apps.values())):
            try:
                app.stop(drain_timeout=1.0)
            except Exception:
                logger.exception("stopping %s failed", app.server_id)
        self.apps.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class ProcessCluster:
    """A real cluster started by the real command line (``zpomelo start -D``) in ``project_dir``."""

    def __init__(self, project_dir, env="test", username="admin", password="admin"):
        self.project_dir = str(project_dir)
        self.env = env
        self.auth = ["-u", username, "-p", password]
        self.master = None

    def zpomelo(self, *args, timeout=60, check=True):
        import json
        import subprocess
        import sys
        cmd = [sys.executable, "-m", "zpomelo.cli", *args]
        run = subprocess.run(cmd, cwd=self.project_dir, capture_output=True, text=True, timeout=timeout)
        if check and run.returncode != 0:
            raise AssertionError("%s failed (%s): %s%s" % (" ".join(args), run.returncode, run.stdout, run.stderr))
        if "--json" in args and run.returncode == 0:
            return json.loads(run.stdout)
        return run

    def start(self, timeout=60):
        self.master = self.zpomelo("start", "-D", "-e", self.env, "--json", timeout=timeout)
        return self

    def servers(self):
        return {row["id"]: row for row in self.zpomelo("list", "-e", self.env, "--json", *self.auth)}

    def stop(self):
        self.zpomelo("stop", "-e", self.env, *self.auth, check=False)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
