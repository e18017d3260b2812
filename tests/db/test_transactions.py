"""The transaction core on both engines: isolation, rollback, outbox, nesting, locks, retries."""
import time

import gevent
import pytest

from db_models import Counter, Player
from zpomelo.db import (Deadlock, Field, LockTimeout, Model, NoTransaction, TransactionAborted,
                        ValidationError, after_commit)


def test_create_read_update_delete(db):
    with db.transaction():
        p = Player.create("u1", name="ann", gold=5)
        assert p.items == [] and p.area is None
    with db.transaction():
        p = Player.get("u1")
        assert (p.name, p.gold) == ("ann", 5)
        p.gold += 10
        p.items.append("sword")  # in-place change of a list field is seen too
    with db.transaction():
        p = Player.get("u1")
        assert (p.gold, p.items) == (15, ["sword"])
        p.delete()
        assert Player.get("u1") is None
    with db.transaction():
        assert Player.get("u1") is None
        assert Player.get("nobody") is None


def test_a_fresh_database_reads_what_another_committed(store):
    first, second = store(), store()
    with first.transaction():
        Player.create("u1", gold=7)
    with second.transaction():
        assert Player.get("u1").gold == 7


def test_rollback_changes_nothing_and_drops_the_outbox(db):
    sent = []
    with db.transaction():
        Player.create("u1", gold=1)
    with pytest.raises(RuntimeError):
        with db.transaction():
            Player.get("u1").gold = 99
            Player.create("u2")
            after_commit(sent.append, "push")
            raise RuntimeError("handler failed")
    assert sent == []
    with db.transaction():
        assert Player.get("u1").gold == 1
        assert Player.get("u2") is None
        after_commit(sent.append, "push")
        assert sent == []  # not before the commit
    assert sent == ["push"]


def test_outbox_is_per_transaction(db):
    """quick-pomelo's buffer was per process: one commit flushed another's pushes."""
    sent = []
    gate = gevent.event.Event()

    def slow_then_fail():
        with db.transaction():
            Player.get_or_create("a")
            after_commit(sent.append, "from the failing one")
            gate.wait(5)
            raise RuntimeError("no")

    failing = gevent.spawn(slow_then_fail)
    gevent.sleep(0)
    with db.transaction():
        Player.get_or_create("b")
        after_commit(sent.append, "from the committed one")
    assert sent == ["from the committed one"]
    gate.set()
    failing.join(5)
    assert isinstance(failing.exception, RuntimeError)
    assert sent == ["from the committed one"]


def test_without_a_transaction_models_fail_clearly_and_pushes_go_at_once(db):
    with pytest.raises(NoTransaction, match="app.db.transaction"):
        Player.get("u1")
    sent = []
    after_commit(sent.append, 1)
    assert sent == [1]


def test_nested_transaction_joins_and_a_failed_inner_block_dooms_the_outer(db):
    with db.transaction() as outer:
        with db.transaction() as inner:
            assert inner is outer
            Player.create("u1", gold=1)
        assert Player.get("u1").gold == 1
    with pytest.raises(TransactionAborted, match="nested"):
        with db.transaction():
            Player.get("u1").gold = 50
            try:
                with db.transaction():
                    Player.get("u1").gold = 60
                    raise KeyError("inner")
            except KeyError:
                pass  # swallowed by game code: the outer block must still not commit half
    with db.transaction():
        assert Player.get("u1").gold == 1


def test_run_retries_and_nested_run_joins(db):
    def give(uid, n):
        Player.get_or_create(uid).gold += n
        return Player.get(uid).gold

    def give_twice(uid):
        db.run(give, uid, 1)
        return db.run(give, uid, 2)
    assert db.run(give_twice, "u1") == 3


def test_types_are_checked(db):
    with db.transaction():
        p = Player.create("u1")
        with pytest.raises(ValidationError, match="gold takes int"):
            p.gold = "many"
        with pytest.raises(ValidationError, match="gold takes int"):
            p.gold = True
        with pytest.raises(ValidationError, match="no field"):
            Player.create("u2", colour="red")
        with pytest.raises(ValidationError, match="already exists"):
            Player.create("u1")
        with pytest.raises(ValidationError, match="str or int"):
            Player.get(1.5)


def test_concurrent_increments_in_one_server_are_serialized(db):
    def inc():
        Counter.get_or_create("c").n += 1
    workers = [gevent.spawn(lambda: [db.run(inc) for _ in range(50)]) for _ in range(10)]
    gevent.joinall(workers, timeout=60, raise_error=True)
    with db.transaction():
        assert Counter.get("c").n == 500
    assert db.stats["retries"] == 0  # one server: its locks order everything, nothing conflicts


def test_two_servers_on_one_store_never_lose_an_increment(store):
    """Each Database has its own locks and cache, like two processes: the version check decides."""
    dbs = [store(), store()]

    def inc():
        Counter.get_or_create("c").n += 1
    workers = [gevent.spawn(lambda d=d: [d.run(inc) for _ in range(40)]) for d in dbs for _ in range(5)]
    gevent.joinall(workers, timeout=90, raise_error=True)
    # run(): a read from a stale cache is refused at commit and rerun, so the value is current
    assert dbs[0].run(lambda: Counter.get("c").n) == 400
    assert sum(d.stats["conflicts"] for d in dbs) > 0  # the stale caches were caught


def test_stale_cache_is_caught_and_the_transaction_rerun(store):
    a, b = store(), store()
    a.run(lambda: Player.create("u1", gold=10))
    assert a.run(lambda: Player.get("u1").gold) == 10   # now cached in a
    b.run(lambda: setattr(Player.get("u1"), "gold", 20))
    runs = []

    def add_five():
        runs.append(1)
        Player.get("u1").gold += 5
    a.run(add_five)
    assert len(runs) == 2  # first run saw the stale 10 and was refused, the rerun saw 20
    assert b.run(lambda: Player.get("u1").gold) == 25


def test_a_read_only_transaction_is_validated_too(store):
    a, b = store(), store()
    a.run(lambda: (Player.create("x", gold=1), Player.create("y", gold=1)))
    a.run(lambda: (Player.get("x"), Player.get("y")))  # both cached in a
    b.run(lambda: (setattr(Player.get("x"), "gold", 0), setattr(Player.get("y"), "gold", 2)))
    seen = a.run(lambda: Player.get("x").gold + Player.get("y").gold)
    assert seen == 2  # never the mix 1 + 2 of a stale and a fresh document


def test_deadlock_is_detected_at_once_and_the_youngest_retried(db):
    db.lock_timeout = 10.0
    db.run(lambda: (Player.create("a", gold=100), Player.create("b", gold=100)))
    both_locked_first = gevent.event.Event()
    attempts = {"ab": 0, "ba": 0}

    def transfer(name, src, dst):
        attempts[name] += 1
        Player.get(src).gold -= 1
        if attempts[name] == 1:
            both_locked_first.wait(5)
            both_locked_first.set()
            gevent.sleep(0.01)
        Player.get(dst).gold += 1

    started = time.monotonic()
    older = gevent.spawn(db.run, transfer, "ab", "a", "b")
    gevent.sleep(0.001)
    younger = gevent.spawn(db.run, transfer, "ba", "b", "a")
    gevent.sleep(0.001)
    both_locked_first.set()
    gevent.joinall([older, younger], timeout=10, raise_error=True)
    assert time.monotonic() - started < 2.0  # far below the 10 s lock timeout
    assert db.locks.stats["deadlocks"] == 1
    assert attempts == {"ab": 1, "ba": 2}  # the younger one was aborted and rerun
    assert db.run(lambda: Player.get("a").gold + Player.get("b").gold) == 200


def test_deadlock_of_three(db):
    db.lock_timeout = 10.0
    db.run(lambda: [Counter.create(k) for k in "xyz"])
    ready = gevent.event.Event()
    count = [0]

    def cycle(first, second):
        Counter.get(first).n += 1
        count[0] += 1
        if count[0] >= 3:
            ready.set()
        ready.wait(5)
        Counter.get(second).n += 1
    started = time.monotonic()
    jobs = [gevent.spawn(db.run, cycle, a, b) for a, b in ("xy", "yz", "zx")]
    gevent.joinall(jobs, timeout=10, raise_error=True)
    assert time.monotonic() - started < 2.0
    assert db.locks.stats["deadlocks"] >= 1
    assert db.run(lambda: sum(Counter.get(k).n for k in "xyz")) == 6


def test_lock_timeout_is_a_clear_error_and_frees_nothing_it_did_not_hold(db):
    db.lock_timeout = 0.2
    db.run(lambda: Player.create("u1", gold=1))
    holding = gevent.event.Event()
    release = gevent.event.Event()

    def hold():
        with db.transaction():
            Player.get("u1").gold = 2
            holding.set()
            release.wait(5)
    holder = gevent.spawn(hold)
    holding.wait(5)
    with pytest.raises(LockTimeout, match="lock on players/u1"):
        db.run(lambda: Player.get("u1"))
    release.set()
    holder.join(5)
    assert db.run(lambda: Player.get("u1").gold) == 2
    assert len(db.locks) == 0


def test_a_deadlock_error_caught_by_game_code_still_aborts(db):
    db.run(lambda: Player.create("a", gold=1))
    with pytest.raises(Deadlock):
        with db.transaction() as tx:
            Player.get("a").gold = 5
            tx.doomed = Deadlock("simulated: this transaction was chosen as the victim")
            try:
                Player.get("b")
            except Deadlock:
                pass  # game code swallowing it must not let the transaction commit
    assert db.run(lambda: Player.get("a").gold) == 1


def test_idempotent_request_applies_once(store):
    a, b = store(), store()
    a.run(lambda: Player.create("u1", gold=0))

    def pay():
        Player.get("u1").gold += 10
        return {"gold": Player.get("u1").gold}
    assert a.run(pay, request_id="u1:req-7") == {"gold": 10}
    assert b.run(pay, request_id="u1:req-7") == {"gold": 10}  # replayed on another server
    assert a.run(pay, request_id="u1:req-8") == {"gold": 20}
    assert b.run(lambda: Player.get("u1").gold) == 20


def test_versions_never_repeat_after_delete_and_recreate(store):
    a, b = store(), store()
    a.run(lambda: Player.create("u1", gold=1))
    b.run(lambda: Player.get("u1").gold)            # b caches version 1
    a.run(lambda: Player.get("u1").delete())
    a.run(lambda: Player.create("u1", gold=50))
    seen = b.run(lambda: Player.get("u1").gold)
    assert seen == 50


def test_a_pooled_job_that_leaves_its_transaction_open_has_it_rolled_back(db):
    """Pool greenlets are reused: a transaction begun by hand and never ended must not reach the
    next job run by the same greenlet, nor keep its locks."""
    from zpomelo.db.transaction import current
    from zpomelo.greenpool import GreenPool
    with db.transaction():
        Counter.create("c", n=1)
    pool = GreenPool(1, keep_idle=1)
    seen = {}

    def forgets_to_end():
        db.begin()
        Counter.get("c").n = 99          # locks "c" and changes it, never committed
        seen["first"] = gevent.getcurrent()

    def next_job():
        seen["second"] = gevent.getcurrent()
        seen["inherited"] = current()
        with db.transaction():           # the lock is free again: no wait, no LockTimeout
            seen["n"] = Counter.get("c").n

    pool.spawn(forgets_to_end)
    pool.join()
    pool.spawn(next_job)
    pool.join()
    assert seen["second"] is seen["first"]       # the same greenlet ran both jobs
    assert seen["inherited"] is None and seen["n"] == 1


def test_registered_models_are_items_and_attributes_and_unknown_names_say_what_to_do(db):
    db.register(Player)
    assert db.models.Player is Player and db.models["Player"] is Player

    class copy(Model):      # named like a dict method: an item only, dict.copy still works
        collection = "copies"
        n = Field(int, default=0)
    db.register(copy)
    assert db.models["copy"] is copy and db.models.copy() == dict(db.models)
    with pytest.raises(AttributeError, match="no model 'Nobody' is registered.*app/models"):
        db.models.Nobody


def test_a_document_stored_before_its_model_changed_reads_with_the_model_of_now(store):
    """A field added since the document was written reads as its default, a field removed is
    gone; the document written back has the new shape (what a new server version finds)."""
    class Hero(Model):
        collection = "heroes"
        gold = Field(int, default=0)
        title = Field(str, default="none")
    old_server = store()
    with old_server.transaction():
        Hero.create("h1", gold=7, title="sir")

    class Hero(Model):      # noqa: F811 - the same collection, as the next release declares it
        collection = "heroes"
        gold = Field(int, default=0)
        level = Field(int, default=1)
    new_server = store()
    with new_server.transaction():
        hero = Hero.get("h1")
        assert hero.to_dict() == {"id": "h1", "gold": 7, "level": 1}
        hero.level += 1
    new_server.cache.clear()
    with new_server.transaction():
        assert Hero.get("h1").to_dict() == {"id": "h1", "gold": 7, "level": 2}
