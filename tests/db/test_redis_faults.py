"""Redis faults with a real redis-server.

- Over its ``maxmemory`` (``noeviction``): a commit fails with a clear error, nothing of it is
  written, a two-document transaction stays whole, and commits resume once Redis has room.
  Redis checks the memory limit at a script's first write and never in the middle of one, which
  is what keeps the commit script atomic here.
- Acknowledged writes lost (``everysec``, a failover): a version a lost write had is never given
  again, so a server that cached the lost write cannot commit over a newer document.
"""
import contextlib

import pytest
import redis

from db_models import Player, move_gold
from redis_service import RedisServer
from zpomelo.db import Database, StoreUnavailable
from zpomelo.db.engine_redis import RedisEngine

BIG = "x" * 400_000


def _put(pid, name):
    Player.get_or_create(pid).name = name


def _name(pid):
    player = Player.get(pid)
    return player.name if player is not None else None


def _gold(*pids):
    return [Player.get(pid).gold for pid in pids]


@pytest.mark.timeout(60)
def test_a_redis_over_maxmemory_fails_commits_clearly_and_whole_and_they_resume_with_room(tmp_path):
    server = RedisServer(tmp_path, appendfsync="everysec",
                         extra=("--maxmemory-policy", "noeviction")).start()
    db = None
    stack = contextlib.ExitStack()
    try:
        db = Database(RedisEngine(server.url, prefix="t:")).register(Player)
        admin = stack.enter_context(redis.Redis.from_url(server.url))
        db.run(_put, "a", "before")
        db.run(_put, "b", "before")
        db.run(move_gold, "a", "b", 10)

        admin.config_set("maxmemory", admin.info("memory")["used_memory"] + 50_000)
        with pytest.raises(StoreUnavailable, match="over its maxmemory") as failed:
            db.run(_put, "big", BIG)        # the big argument itself takes Redis over the limit
        assert "nothing of this commit was written: raise maxmemory" in str(failed.value)
        assert admin.exists("t:players\x1fbig") == 0
        with pytest.raises(StoreUnavailable, match="over its maxmemory"):
            db.run(move_gold, "a", "b", 5)

        db.cache.clear()        # read what Redis holds, not what this server remembers
        assert db.run(_gold, "a", "b") == [-10, 10]   # the transfer left both or neither
        assert db.run(_name, "big") is None

        admin.config_set("maxmemory", 0)
        db.run(move_gold, "a", "b", 5)
        db.run(_put, "big", BIG)
        db.cache.clear()
        assert db.run(_gold, "a", "b") == [-15, 15]
        assert db.run(_name, "big") == BIG
    finally:
        stack.close()
        if db is not None:
            db.close()
        server.stop()


@pytest.mark.timeout(30)
def test_a_server_whose_cached_write_the_store_lost_cannot_commit_over_a_newer_one(tmp_path):
    """Redis may lose acknowledged writes: the last second with ``appendfsync everysec``, or
    what a promoted replica had not received. A server that cached such a write (b) must not
    commit on it once another server (a) wrote the document again from what the store kept:
    a version a lost write had must never be given again. Here the loss is made by putting the
    document back as it was before b's write, which is what the store holds after either loss."""
    server = RedisServer(tmp_path, appendfsync="everysec").start()
    a = b = None
    stack = contextlib.ExitStack()
    try:
        url = server.url
        a = Database(RedisEngine(url, prefix="t:")).register(Player)
        b = Database(RedisEngine(url, prefix="t:")).register(Player)
        raw = stack.enter_context(redis.Redis.from_url(url))
        key = "t:" + Player.key_of("u1")
        a.run(lambda: Player.create("u1", gold=100))
        kept = raw.hgetall(key)                       # what the store will still hold

        def add(n):
            player = Player.get("u1")
            player.gold += n
            return player.gold
        assert b.run(add, 100) == 200                 # acknowledged, cached by b ...
        raw.delete(key)
        raw.hset(key, mapping=kept)                   # ... and lost by the store

        assert a.run(add, 1) == 101                   # a writes from what the store kept
        assert b.run(add, 10) == 111                  # b must see a's write, not its lost one
        assert a.run(lambda: Player.get("u1").gold) == 111
    finally:
        stack.close()
        for db in (a, b):
            if db is not None:
                db.close()
        server.stop()
