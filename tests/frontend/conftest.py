import os

import pytest

from zpomelo.testing import InProcessCluster

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "apps", "frontend")


@pytest.fixture
def cluster():
    with InProcessCluster(APP_DIR, "test") as c:
        yield c


@pytest.fixture
def frontend(cluster):
    return cluster["connector-1"]


@pytest.fixture
def connect(cluster):
    def _connect(transport="tcp", **kw):
        return cluster.connect("connector-1", transport, **kw)
    return _connect
