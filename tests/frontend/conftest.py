import os

import pytest

from zpomelo.client import Client
from zpomelo.testing import InProcessCluster

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "apps", "frontend")


@pytest.fixture
def frontend():
    c = InProcessCluster(APP_DIR, "test")
    c.start()
    yield c["connector-1"]
    c.stop()


@pytest.fixture
def connect(frontend):
    clients = []

    def _connect(transport="tcp", **kw):
        client = Client.connect("127.0.0.1", frontend.current_server.client_port, transport=transport, **kw)
        clients.append(client)
        return client
    yield _connect
    for client in clients:
        client.close()
