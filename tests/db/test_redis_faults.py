"""A Redis that refuses writes (over its ``maxmemory``, with the ``noeviction`` policy): the
commit fails with a clear error, nothing of it is written, a two-document transaction stays
whole, and commits resume once Redis has room. Redis checks the memory limit at a script's first
write and never in the middle of one, which is what keeps the commit script atomic here."""
import pytest
import redis

from db_models import Player
from redis_service import RedisServer
from zpomelo.db import Database, StoreUnavailable
from zpomelo.db.engine_redis import RedisEngine

BIG = "x" * 400_000


def _put(pid, name):
    Player.get_or_create(pid).name = name


def _name(pid):
    player = Player.get(pid)
    return player.name if player is not None else None


def _move_gold(src, dst, amount):
    Player.get(src).gold -= amount
    Player.get(dst).gold += amount


def _gold(*pids):
    return [Player.get(pid).gold for pid in pids]


@pytest.mark.timeout(60)
def test_a_redis_over_maxmemory_fails_commits_clearly_and_whole_and_they_resume_with_room(tmp_path):
    server = RedisServer(tmp_path, appendfsync="everysec",
                         extra=("--maxmemory-policy", "noeviction")).start()
    db = None
    try:
        db = Database(RedisEngine(server.url, prefix="t:")).register(Player)
        admin = redis.Redis.from_url(server.url)
        db.run(_put, "a", "before")
        db.run(_put, "b", "before")
        db.run(_move_gold, "a", "b", 10)

        admin.config_set("maxmemory", admin.info("memory")["used_memory"] + 50_000)
        with pytest.raises(StoreUnavailable, match="over its maxmemory") as failed:
            db.run(_put, "big", BIG)        # the big argument itself takes Redis over the limit
        assert "nothing of this commit was written: raise maxmemory" in str(failed.value)
        assert admin.exists("t:players\x1fbig") == 0
        with pytest.raises(StoreUnavailable, match="over its maxmemory"):
            db.run(_move_gold, "a", "b", 5)

        db.cache.clear()        # read what Redis holds, not what this server remembers
        assert db.run(_gold, "a", "b") == [-10, 10]   # the transfer left both or neither
        assert db.run(_name, "big") is None

        admin.config_set("maxmemory", 0)
        db.run(_move_gold, "a", "b", 5)
        db.run(_put, "big", BIG)
        db.cache.clear()
        assert db.run(_gold, "a", "b") == [-15, 15]
        assert db.run(_name, "big") == BIG
    finally:
        if db is not None:
            db.close()
        server.stop()
