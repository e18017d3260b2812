"""The frontend tests run tests/apps/frontend (one connector) with the plugin's fixtures."""
import os

import pytest

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps", "frontend")


@pytest.fixture(scope="session")
def zpomelo_project():
    return APP_DIR


@pytest.fixture
def frontend(cluster):
    return cluster["connector-1"]
