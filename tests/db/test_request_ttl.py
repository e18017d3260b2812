"""Idempotency records expire (requestTtl): a retry within the TTL applies once, later records
are deleted (SQLite: dead time buckets purged; Redis: PEXPIRE set in the commit script), so the
store does not grow with every request id ever seen. Both engines, real stores."""
import sqlite3

import pytest

from zpomelo.db.database import BUCKET_PREFIX, REQUEST_PREFIX
from zpomelo.testing import wait_until

pytestmark = pytest.mark.timeout(60)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def _counter(db):
    calls = []

    def pay(n):
        calls.append(n)
        return {"n": n, "calls": len(calls)}
    return pay, calls


def _stored_records(store, db):
    """Request records present in the real store (read from it, not from the server's cache)."""
    if store.kind == "sqlite":
        with sqlite3.connect(store.url) as conn:
            return conn.execute("SELECT count(*) FROM docs WHERE k >= ? AND k < ?",
                                (BUCKET_PREFIX, BUCKET_PREFIX + "\x7f")).fetchone()[0]
    return len(db.engine.client.keys(store.prefix + BUCKET_PREFIX + "*"))


def test_a_retry_within_the_ttl_applies_once_after_it_again(store):
    clock = Clock(1000.0)
    db = store(request_ttl=10, clock=clock)
    pay, calls = _counter(db)
    first = db.run(pay, 1, request_id="u1|r1")
    clock.now = 1009.9                               # next bucket, still found in the previous
    assert db.run(pay, 1, request_id="u1|r1") == first
    assert len(calls) == 1 and db.stats["replays"] == 1
    clock.now = 1021.0                               # two buckets later: expired
    assert db.run(pay, 1, request_id="u1|r1") == {"n": 1, "calls": 2}
    other = store(request_ttl=10, clock=clock)       # another server replays the new one
    assert other.run(pay, 1, request_id="u1|r1") == {"n": 1, "calls": 2}


def test_records_are_kept_at_least_the_ttl_at_most_twice_it(store):
    clock = Clock(0.0)
    db = store(request_ttl=100, clock=clock)
    pay, calls = _counter(db)
    for written_at in (0.0, 50.0, 99.9):
        clock.now = written_at
        key = "req-%s" % written_at
        db.run(pay, 1, request_id=key)
        clock.now = written_at + 100.0               # exactly the TTL later: replayed
        db.run(pay, 1, request_id=key)
        clock.now = written_at + 200.1               # past twice the TTL: never replayed
        db.run(pay, 1, request_id=key)
    assert len(calls) == 6


def test_sqlite_purges_the_records_nobody_reads_any_more(store):
    if store.kind != "sqlite":
        pytest.skip("Redis expires records itself (next test)")
    clock = Clock(0.0)
    db = store(request_ttl=10, clock=clock)
    pay, _ = _counter(db)
    for i in range(1500):                            # more than one DELETE slice
        db.run(pay, i, request_id="old-%d" % i)
    clock.now = 15.0
    for i in range(3):
        db.run(pay, i, request_id="recent-%d" % i)
    with db.transaction() as tx:                    # a record of before expiry existed
        tx.raw_put(REQUEST_PREFIX + "legacy", {"r": 1, "t": 0})
    assert db.purge_requests() == 1                  # bucket 0 is still read at 15 s
    assert _stored_records(store, db) == 1503
    clock.now = 21.0                                 # bucket 0 is dead: it goes
    assert db.purge_requests() == 1500
    assert _stored_records(store, db) == 3
    clock.now = 22.0
    assert db.run(pay, 0, request_id="recent-0")["calls"] == 1501   # kept: replayed


def test_sqlite_purges_by_itself(store):
    if store.kind != "sqlite":
        pytest.skip("Redis expires records itself")
    clock = Clock(0.0)
    db = store(request_ttl=1, clock=clock)          # purges every 0.5 s
    pay, _ = _counter(db)
    for i in range(20):
        db.run(pay, i, request_id="r%d" % i)
    assert _stored_records(store, db) == 20
    clock.now = 3.0
    wait_until(lambda: _stored_records(store, db) == 0, 10, message="the purge loop")


def test_redis_records_expire_in_redis(store):
    if store.kind != "redis":
        pytest.skip("SQLite purges (previous tests)")
    db = store(request_ttl=0.25)
    pay, _ = _counter(db)
    db.run(pay, 1, request_id="r1")
    keys = db.engine.client.keys(store.prefix + BUCKET_PREFIX + "*")
    assert len(keys) == 1
    assert 1000 < db.engine.client.pttl(keys[0]) <= 1500    # 2 x TTL + 1 s of clock margin
    with db.transaction() as tx:                    # ordinary documents never expire
        tx.raw_put("plain", {"x": 1})
    assert db.engine.client.pttl(store.prefix + "plain") == -1
    wait_until(lambda: _stored_records(store, db) == 0, 10, message="Redis to expire it")


def test_a_zero_ttl_keeps_records_forever(store):
    clock = Clock(0.0)
    db = store(request_ttl=0, clock=clock)
    pay, calls = _counter(db)
    db.run(pay, 1, request_id="r1")
    clock.now = 10 ** 9
    db.run(pay, 1, request_id="r1")
    assert len(calls) == 1 and _stored_records(store, db) == 0   # stored under $req|, no bucket
