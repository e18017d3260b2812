"""The chat project's tests use zpomelo's pytest plugin (installed with zpomelo).

A game whose pytest.ini sits in the project directory needs no conftest: the plugin finds
config/servers.json there. This example lives inside zpomelo's repository, so it names its
directory here (the plugin also reads ``zpomelo_project`` from the ini file, or a marker).
"""
import os

import pytest


@pytest.fixture(scope="session")
def zpomelo_project():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
