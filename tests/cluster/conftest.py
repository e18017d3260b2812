import os

import pytest

from zpomelo.testing import InProcessCluster

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "apps", "cluster")


@pytest.fixture
def cluster():
    with InProcessCluster(APP_DIR, "test") as c:
        yield c


@pytest.fixture
def connect(cluster):
    def _connect(server_id="connector-1", transport="tcp", **kw):
        return cluster.connect(server_id, transport, **kw)
    return _connect
