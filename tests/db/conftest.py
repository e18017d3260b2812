"""Fixtures for the store tests: both engines, a real redis-server per session on a free port."""
import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from zpomelo.db import Database
from zpomelo.db.engine_sqlite import SqliteEngine

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server we start (AOF on) and stop by pid; ``kill()`` is kill -9, ``start()`` again reuses the dir."""

    def __init__(self, directory, appendfsync="always"):
        self.directory = str(directory)
        self.appendfsync = appendfsync
        self.port = None
        self.proc = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self, timeout=10.0):
        for _ in range(5):
            port = self.port or free_port()
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "yes", "--appendfsync", self.appendfsync, "--dir", self.directory,
                 "--daemonize", "no", "--logfile", os.path.join(self.directory, "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                        s.sendall(b"PING\r\n")
                        if s.recv(16).startswith(b"+PONG"):
                            self.port = port
                            return self
                except OSError:
                    time.sleep(0.01)  # a subprocess starting: nothing to wait on but its port
            self.stop()
            if self.port:
                break
        raise RuntimeError("redis-server did not start (see %s/redis.log)" % self.directory)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """Shared by the tests that are not about Redis's own durability (those start their own
    with appendfsync always): everysec keeps hot-key tests fast; correctness is the same."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendfsync="everysec").start()
    yield server
    server.stop()


def make_engine(kind, tmp_path, redis_server=None, prefix=None):
    if kind == "sqlite":
        return SqliteEngine(os.path.join(str(tmp_path), "game.db"))
    from zpomelo.db.engine_redis import RedisEngine
    return RedisEngine(redis_server.url, prefix=prefix)


@pytest.fixture(params=["sqlite", "redis"])
def engine_kind(request):
    return request.param


@pytest.fixture
def store(engine_kind, tmp_path, request):
    """A factory of Databases over ONE store (each Database is what one server has)."""
    server = request.getfixturevalue("redis_server") if engine_kind == "redis" else None
    prefix = "t%s:" % uuid.uuid4().hex[:8]
    made = []

    def new_database(**options):
        db = Database(make_engine(engine_kind, tmp_path, server, prefix), **options)
        made.append(db)
        return db
    new_database.kind = engine_kind
    new_database.prefix = prefix
    new_database.url = server.url if server else os.path.join(str(tmp_path), "game.db")
    yield new_database
    for db in made:
        db.close()


@pytest.fixture
def db(store):
    return store()
