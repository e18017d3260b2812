"""Waits on the store: bounded by one shared check (no Timeout per commit), and a store that
stops answering gives a clear "outcome unknown" error in time; SQLite's one-statement commit path
falls back to checking every commit of a batch when a version moved."""
import os
import signal
import time

import gevent
import gevent.socket
import pytest
from gevent.event import AsyncResult, Event

from db_models import Counter
from redis_service import RedisServer
from zpomelo.db import Database, StoreUnavailable
from zpomelo.db.codec import unpack
from zpomelo.db.deadlines import SharedDeadlines
from zpomelo.db.engine_sqlite import SqliteEngine
from zpomelo.db.errors import Conflict
from zpomelo.db.group_commit import CommitTicket, GroupCommitter, _wake
from zpomelo.testing import wait_until


def _inc():
    c = Counter.get_or_create("c")
    c.n += 1
    return c.n


@pytest.mark.timeout(10)
def test_a_wait_ends_at_its_deadline_or_with_its_result():
    deadlines = SharedDeadlines(period=0.05)
    try:
        never = AsyncResult()
        started = time.monotonic()
        assert deadlines.wait(never, 0.2) is False
        waited = time.monotonic() - started
        assert 0.2 <= waited < 2.0, waited

        later = AsyncResult()
        gevent.spawn_later(0.05, later.set, 7)
        assert deadlines.wait(later, 5.0) is True and later.get() == 7
        assert deadlines.wait(later, 5.0) is True      # ready: no wait at all
        assert not deadlines._waits
    finally:
        deadlines.close()


@pytest.mark.timeout(10)
def test_a_result_that_wins_the_race_cancels_the_expiry():
    """The deadline passes and the expiry is scheduled, but the result is set in the same turn
    of the loop: the waiter returns True and no WaitExpired reaches the code after it."""
    deadlines = SharedDeadlines(period=3600)   # the check runs only when the test calls it
    result = AsyncResult()
    outcome = {}

    def waiter():
        outcome["ready"] = deadlines.wait(result, 0.0001)
        gevent.sleep(0.05)          # an expiry that leaked would be thrown in here
        outcome["after"] = "clean"

    g = gevent.spawn(waiter)
    wait_until(lambda: g in deadlines._waits, 5, message="the waiter to wait")
    result.set("done")              # the result first ...
    deadlines.expire(time.monotonic() + 1)   # ... then the expiry, in the same turn
    g.join(5)
    deadlines.close()
    assert g.successful(), g.exception
    assert outcome == {"ready": True, "after": "clean"}


@pytest.mark.timeout(60)
def test_a_frozen_redis_gives_an_outcome_unknown_error_within_commit_timeout(tmp_path):
    server = RedisServer(tmp_path, appendfsync="everysec").start()
    from zpomelo.db.engine_redis import RedisEngine
    db = Database(RedisEngine(server.url, prefix="w:", socket_timeout=30.0), commit_timeout=1.0,
                  max_retries=0)
    try:
        assert db.run(_inc) == 1
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="did not finish committing .* outcome is unknown"):
                db.run(_inc)
            assert time.monotonic() - started < 10
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        # the store answers again: a commit goes through; each one whose outcome was unknown
        # happened once or not at all, never twice
        attempts = []
        wait_until(lambda: _try(db, _inc, attempts), 20, message="a commit after SIGCONT")
        with db.transaction():
            n = Counter.get("c").n
        assert 2 <= n <= 2 + len(attempts), (n, attempts)   # 1 before, the last attempt, the frozen one maybe
    finally:
        db.close()
        server.stop()


def _try(db, fn, attempts):
    attempts.append(1)
    try:
        db.run(fn)
        return True
    except StoreUnavailable:
        return False


@pytest.mark.timeout(30)
def test_a_batch_with_a_stale_commit_is_redone_checking_each_commit(tmp_path):
    """One SQLite batch: the first commit updates k (version 1 -> 2); the second read k at
    version 1 too. The fast path refuses the second after applying the first; the batch is
    rolled back and redone: the first commits, the second is a Conflict naming k, and a third
    commit of the batch (another key) is not disturbed."""
    engine = SqliteEngine(str(tmp_path / "game.db"), synchronous="NORMAL")
    try:
        assert engine._apply([({"k": 0, "j": 0}, {"k": b"one", "j": b"j1"})]) == [{"k": 1, "j": 1}]
        outcomes = engine._apply([
            ({"k": 1}, {"k": b"first"}),
            ({"k": 1, "j": 1}, {"k": b"stale", "j": b"stale"}),
            ({"j": 1, "new": 0}, {"new": b"n"}),
            ({"absent": 0}, {"absent": b"created"}),
        ])
        assert outcomes[0] == {"k": 2}
        assert isinstance(outcomes[1], Conflict) and list(outcomes[1].keys) == ["k"]
        assert outcomes[2] == {"new": 1}
        assert outcomes[3] == {"absent": 1}
        assert engine._load("k") == (2, b"first")
        assert engine._load("j") == (1, b"j1")       # the stale commit wrote nothing
        # creating a document someone else created meanwhile is a conflict, not an error
        outcome, = engine._apply([({"absent": 0}, {"absent": b"again"})])
        assert isinstance(outcome, Conflict)
        assert engine._load("absent") == (1, b"created")
        assert engine.stats["conflicts"] == 2
    finally:
        engine.close()


class _HeldCommits:
    """An engine whose group commits wait inside the batch until the test decides their outcome
    (the waiting side is what is tested here; the real engines are above and in
    test_transactions)."""
    name = "held"

    def __init__(self):
        self.pending = []               # the batches being applied
        self.decision = AsyncResult()   # the store's answer: versions, or an exception
        self._commits = GroupCommitter(self._apply, 16, lambda: StoreUnavailable("closed"))

    def _apply(self, batch):
        self.pending.append(batch)
        versions = self.decision.get()  # raising here makes it every commit's outcome
        return [versions] * len(batch)

    def load_async(self, key):
        result = AsyncResult()
        result.set((0, None))    # every document absent
        return result

    def commit_async(self, checks, writes):
        return self._commits.submit(checks, writes)

    def close(self):
        self._commits.close(timeout=1)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("store_says, interruption, expected", [
    ("yes", gevent.Timeout, "committed"),            # the answer tells the truth: it committed
    ("no", gevent.Timeout, "Timeout"),               # the store said no: the interruption wins
    ("yes", gevent.GreenletExit, "GreenletExit"),    # killed: never swallowed
])
def test_a_commit_interrupted_while_the_store_applies_it_waits_for_the_outcome(store_says, interruption, expected):
    engine = _HeldCommits()
    db = Database(engine, request_ttl=0, commit_timeout=5)
    db.register(Counter)
    outcome = {}

    def handler():
        try:
            with db.transaction():
                Counter.create("c", n=1)
            outcome["result"] = "committed"
        except BaseException as exc:  # noqa: B902 - the outcome under test
            outcome["result"] = type(exc).__name__

    interrupted = Event()
    wait_interrupted = db._wait_interrupted
    db._wait_interrupted = lambda *args: (interrupted.set(), wait_interrupted(*args))[1]
    g = gevent.spawn(handler)
    wait_until(lambda: engine.pending, 5, message="the commit to reach the store")
    g.kill(interruption, block=False)   # the handler's timeout (or a kill) while the store works
    assert interrupted.wait(5)
    assert "result" not in outcome   # still waiting for the store's outcome
    if store_says == "yes":
        engine.decision.set({"counters\x1fc": 1})
    else:
        engine.decision.set_exception(StoreUnavailable("disk gone"))
    g.join(5)
    db.close()
    assert outcome["result"] == expected


@pytest.mark.timeout(10)
def test_a_commit_ticket_never_resumes_a_greenlet_that_stopped_waiting_for_it():
    """The wake-up of a batch is a hub callback: when the waiter was interrupted before it ran
    (its handler's timeout), the callback must not switch into whatever it waits for next."""
    ticket = CommitTicket()
    other = Event()
    steps = []

    def committer():
        try:
            ticket.wait()
            steps.append("woken")
        except gevent.Timeout:
            steps.append("interrupted")
        other.wait()
        steps.append("other")

    g = gevent.spawn(committer)
    gevent.idle()                        # parked in ticket.wait()
    waiter = ticket.settle({"k": 1})     # the batch is applied; its wake-up is still to run
    assert waiter is not None
    loop = gevent.get_hub().loop
    loop.run_callback(g.throw, gevent.Timeout())    # the interruption runs first
    loop.run_callback(_wake, [waiter])
    gevent.idle()
    gevent.idle()
    assert steps == ["interrupted"]      # still waiting on ``other``, not resumed by the wake-up
    assert ticket.ready() and ticket.successful() and ticket.get() == {"k": 1}
    other.set()
    g.join(5)
    assert steps == ["interrupted", "other"]


@pytest.mark.timeout(10)
def test_group_commits_each_get_their_own_outcome_and_a_closed_committer_refuses():
    def apply_batch(batch):
        return [Conflict("moved", ["k"]) if writes.get("bad") else {"k": checks["k"] + 1}
                for checks, writes in batch]
    committer = GroupCommitter(apply_batch, 4, lambda: StoreUnavailable("closed for the test"))
    tickets = [committer.submit({"k": n}, {"bad": n % 3 == 0}) for n in range(10)]
    gevent.joinall([gevent.spawn(t.wait) for t in tickets], timeout=5)
    for n, ticket in enumerate(tickets):
        assert ticket.ready()
        if n % 3 == 0:
            assert not ticket.successful()
            with pytest.raises(Conflict):
                ticket.get()
        else:
            assert ticket.successful() and ticket.get() == {"k": n + 1}
    assert committer.close(timeout=1)
    late = committer.submit({"k": 0}, {})
    assert late.ready() and not late.successful()
    with pytest.raises(StoreUnavailable, match="closed for the test"):
        late.get()


@pytest.mark.timeout(60)
def test_redis_commits_go_on_after_the_server_forgot_the_commit_script(tmp_path):
    """Commits call the script by its SHA (no SCRIPT EXISTS round trip per batch); a Redis that
    lost its scripts (a restart, SCRIPT FLUSH) answers NOSCRIPT, which ran nothing: the engine
    loads the script and runs those commits, each exactly once."""
    server = RedisServer(tmp_path, appendfsync="everysec").start()
    from zpomelo.db.engine_redis import RedisEngine
    engine = RedisEngine(server.url, prefix="s:")
    db = Database(engine, max_retries=0)
    try:
        assert db.run(_inc) == 1                 # the first commit already finds no script
        engine.client.script_flush()
        done = gevent.joinall([gevent.spawn(db.run, _inc) for _ in range(5)], timeout=20)
        assert len(done) == 5 and all(g.successful() for g in done), [g.exception for g in done]
        assert sorted(g.value for g in done) == [2, 3, 4, 5, 6]
        db.cache.clear()
        with db.transaction():
            assert Counter.get("c").n == 6       # from Redis itself: each commit applied once
        assert engine.client.script_exists(engine._script_sha) == [True]
    finally:
        db.close()
        server.stop()


class _ReplyDropper:
    """A TCP proxy to Redis that, once armed, forwards the next commit pipeline and then cuts
    the connection instead of passing Redis's answer back: the commits were applied, and the
    engine cannot know it."""

    def __init__(self, redis_port):
        self.redis_port = redis_port
        self.listener = gevent.socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.armed = False
        self.cut = Event()
        self._accepter = gevent.spawn(self._accept)

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            upstream = gevent.socket.create_connection(("127.0.0.1", self.redis_port))
            sent_commit = Event()
            gevent.spawn(self._pump, client, upstream, sent_commit, True)
            gevent.spawn(self._pump, upstream, client, sent_commit, False)

    def _pump(self, src, dst, sent_commit, to_redis):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not to_redis and sent_commit.is_set():
                    break       # Redis answered the commits: drop the answer and the connection
                dst.sendall(data)
                if to_redis and self.armed and b"EVALSHA" in data:
                    self.armed = False
                    sent_commit.set()
        except OSError:
            pass
        finally:
            if sent_commit.is_set():
                self.cut.set()
            src.close()
            dst.close()

    def close(self):
        self._accepter.kill()
        self.listener.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["url", "client"])
def test_a_redis_commit_whose_answer_was_lost_is_never_sent_again(tmp_path, how):
    """Sent again, the commit would find its own new versions, come back as a conflict and rerun
    the handler: applied twice. Whoever made the redis client (redis.Redis() retries 10 times
    by default), the engine sends a commit once and reports the outcome as unknown."""
    import redis
    from zpomelo.db.engine_redis import RedisEngine
    server = RedisServer(tmp_path, appendfsync="everysec").start()
    proxy = _ReplyDropper(server.port)
    url = "redis://127.0.0.1:%d/0" % proxy.port
    engine = RedisEngine(url, prefix="r:") if how == "url" else \
        RedisEngine(url, prefix="r:", client=redis.Redis(host="127.0.0.1", port=proxy.port))
    db = Database(engine, max_retries=5)
    try:
        assert db.run(_inc) == 1
        proxy.armed = True
        with pytest.raises(StoreUnavailable, match="outcome of a commit is unknown"):
            db.run(_inc)
        assert proxy.cut.is_set()
        stored = redis.Redis.from_url(server.url).hget("r:" + Counter.key_of("c"), "d")
        assert unpack(stored)["n"] == 2     # applied by Redis once, not twice
        assert db.run(_inc) == 3             # and the next commit goes through
    finally:
        db.close()
        proxy.close()
        server.stop()
