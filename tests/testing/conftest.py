"""Fixtures for the tests of zpomelo.testing."""
import socket

import pytest


@pytest.fixture
def held_ports():
    """Four ports held open by the test: a server configured with them could not bind them."""
    sockets = []
    for _ in range(4):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        sockets.append(s)
    yield [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
