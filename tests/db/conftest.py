"""Fixtures for the store tests: both engines, a real redis-server per session on a free port."""
import os
import uuid

import pytest

from zpomelo.db import Database
from zpomelo.db.engine_sqlite import SqliteEngine

from engine_kinds import sqlite_options
from redis_service import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """Shared by the tests that are not about Redis's own durability (those start their own
    with appendfsync always): everysec keeps hot-key tests fast; correctness is the same."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendfsync="everysec").start()
    yield server
    server.stop()


def make_engine(kind, tmp_path, redis_server=None, prefix=None):
    if kind.startswith("sqlite"):
        return SqliteEngine(os.path.join(str(tmp_path), "game.db"),
                            synchronous=sqlite_options(kind)["synchronous"])
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
