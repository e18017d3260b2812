"""The ordering tests run tests/apps/cluster with the plugin's cluster and connect fixtures."""
import os

import gevent
import pytest

from zpomelo.testing import rounds

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps", "cluster")


@pytest.fixture(scope="session")
def zpomelo_project():
    return APP_DIR


class EchoLoad:
    """Clients that keep sending echo requests to load a backend until ``stop()`` (at most
    ``limit`` requests each: a test that never stops them still ends)."""

    def __init__(self, clients, limit=100_000):
        self._stop = False
        self._greenlets = [gevent.spawn(self._load, client, limit) for client in clients]

    def _load(self, client, limit):
        for _ in rounds(lambda: self._stop, seconds=300, limit=limit):
            client.request("chat.chatHandler.echo", {"x": 1})

    def stop(self, timeout=20):
        self._stop = True
        gevent.joinall(self._greenlets, timeout=timeout)
