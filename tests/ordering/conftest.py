"""The ordering tests run tests/apps/cluster with the plugin's cluster and connect fixtures."""
import os

import pytest

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps", "cluster")


@pytest.fixture(scope="session")
def zpomelo_project():
    return APP_DIR
