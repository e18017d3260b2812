"""Fixtures for the ZeroMQ transport tests: real sockets on 127.0.0.1, port 0, cleaned up."""
import os
import subprocess
import sys

import pytest

from zpomelo.bus import Bus
from zpomelo.rpc import RpcClient, RpcServer

CHILD_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rpc_child.py")


@pytest.fixture
def closing():
    """Register objects with .close()/.stop(); they are shut down after the test, last first."""
    objects = []

    def register(obj):
        objects.append(obj)
        return obj

    yield register
    for obj in reversed(objects):
        if isinstance(obj, RpcServer):
            obj.stop(drain_timeout=0.2)
        else:
            obj.close()


@pytest.fixture
def make_server(closing):
    def make(dispatch, **kwargs):
        return closing(RpcServer("127.0.0.1", 0, dispatch, **kwargs).start())

    return make


@pytest.fixture
def make_client(closing):
    def make(self_id="client", **kwargs):
        return closing(RpcClient(self_id, **kwargs))

    return make


@pytest.fixture
def make_bus(closing):
    def make(self_id, on_message=None, fallback=None):
        return closing(Bus(self_id, "127.0.0.1", 0, on_message or (lambda kind, payload: None), fallback).start())

    return make


class ChildServer:
    """An RpcServer in another process (rpc_child.py); killed for sure at teardown."""

    def __init__(self, port=0):
        self.process = subprocess.Popen(
            [sys.executable, CHILD_SCRIPT, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        line = self.process.stdout.readline()  # the child prints its bound port when ready
        if not line:
            self.kill()
            raise RuntimeError("rpc child server exited before reporting its port")
        self.port = int(line)
        self.endpoint = "tcp://127.0.0.1:%d" % self.port

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()  # SIGKILL: no goodbye on the wire beyond the kernel closing TCP
        self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream:
                stream.close()


@pytest.fixture
def child_servers():
    started = []

    def start(port=0):
        child = ChildServer(port)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()
