"""The SQLite file refusing writes.

- A full disk: the commit fails with a clear error, nothing of it is written or cached, the store
  keeps serving what fits, and commits resume once there is room. The full disk is made real for
  the writer's connection with ``max_page_count``: SQLite then refuses to grow the file exactly
  as when the file system is full (SQLITE_FULL).
- The file locked by another connection (another process's batch): the commit waits in a thread
  while the server goes on serving, and past ``busyTimeout`` fails with a clear error.
"""
import sqlite3

import gevent
import pytest

from db_models import Player
from engine_kinds import sqlite_options
from zpomelo.db import Database, StoreUnavailable
from zpomelo.db.engine_sqlite import SqliteEngine

BIG = "x" * 200_000     # about 50 pages: cannot fit in the pages the file has


def _put(pid, name):
    Player.get_or_create(pid).name = name


def _name(pid):
    player = Player.get(pid)
    return player.name if player is not None else None


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["sqlite", "sqlite-normal"])
def test_a_full_disk_fails_the_commit_clearly_and_commits_resume_once_there_is_room(tmp_path, kind):
    path = str(tmp_path / "game.db")
    db = Database(SqliteEngine(path, synchronous=sqlite_options(kind)["synchronous"])).register(Player)
    try:
        db.run(_put, "p1", "before")
        writer = db.engine._writer_conn
        pages = writer.execute("PRAGMA page_count").fetchone()[0]
        writer.execute("PRAGMA max_page_count=%d" % pages)

        with pytest.raises(StoreUnavailable, match="full") as failed:
            db.run(_put, "p2", BIG)
        assert "nothing of this commit was written: free space" in str(failed.value)
        assert db.stats["retries"] == 0       # an unavailable store is not retried blindly
        assert db.engine.stats["batches"] == 1  # only the first commit's batch went through

        # nothing of the failed commit is visible, in the cache or in the file
        assert db.run(_name, "p2") is None
        # a write that fits in the pages the file has still commits
        db.run(_put, "p1", "while full")
        assert db.run(_name, "p1") == "while full"

        writer.execute("PRAGMA max_page_count=1073741823")  # room again
        db.run(_put, "p2", BIG)
        assert db.run(_name, "p2") == BIG
    finally:
        db.close()

    reopened = Database(SqliteEngine(path, synchronous="FULL")).register(Player)
    try:
        assert reopened.run(_name, "p1") == "while full"
        assert reopened.run(_name, "p2") == BIG
    finally:
        reopened.close()


def _hold_write_lock(path):
    """Another process's batch in progress: a connection holding the file's write lock."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


@pytest.mark.timeout(30)
def test_a_commit_waits_for_another_holder_of_the_file_without_stopping_the_server(tmp_path):
    path = str(tmp_path / "game.db")
    db = Database(SqliteEngine(path, synchronous="NORMAL", busy_timeout=20)).register(Player)
    try:
        db.run(_put, "p1", "before")
        holder = _hold_write_lock(path)
        committing = gevent.spawn(db.run, _put, "p1", "after")
        ticks = 0
        while ticks < 20:       # the hub keeps running while the commit waits in a thread
            gevent.sleep(0.01)
            ticks += 1
        assert not committing.ready()
        holder.execute("COMMIT")
        holder.close()
        committing.get(timeout=10)
        assert db.run(_name, "p1") == "after"
    finally:
        db.close()


@pytest.mark.timeout(30)
def test_a_file_locked_longer_than_busy_timeout_fails_the_commit_clearly(tmp_path):
    path = str(tmp_path / "game.db")
    db = Database(SqliteEngine(path, synchronous="NORMAL", busy_timeout=0.3)).register(Player)
    try:
        db.run(_put, "p1", "before")
        holder = _hold_write_lock(path)
        try:
            with pytest.raises(StoreUnavailable, match="locked by another connection for more "
                               "than busyTimeout") as failed:
                db.run(_put, "p1", "refused")
            assert "nothing of this commit was written: retry" in str(failed.value)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert db.run(_name, "p1") == "before"
        db.run(_put, "p1", "after")
        assert db.run(_name, "p1") == "after"
    finally:
        db.close()
