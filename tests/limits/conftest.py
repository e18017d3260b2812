"""tests/apps/limits: a frontend with rate limits and global filters, a backend that counts."""
import os

import pytest

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps", "limits")


@pytest.fixture(scope="session")
def zpomelo_project():
    return APP_DIR
