import os

import pytest

from zpomelo.client import Client
from zpomelo.testing import InProcessCluster

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "apps", "cluster")


@pytest.fixture
def cluster():
    c = InProcessCluster(APP_DIR, "test")
    c.start()
    yield c
    c.stop()


@pytest.fixture
def connect(cluster):
    clients = []

    def _connect(server_id="connector-1", transport="tcp", **kw):
        client = Client.connect("127.0.0.1", cluster.client_port(server_id), transport=transport, **kw)
        clients.append(client)
        return client
    yield _connect
    for client in clients:
        client.close()
