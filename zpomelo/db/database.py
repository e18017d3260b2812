"""The Database: an engine (the store), this server's locks and document cache, and the runners.

```python
db = Database(SqliteEngine("game.db"))
db.register(Player)
def give(uid, n):
    Player.get(uid).gold += n           # locked until commit; rerun on conflict
db.run(give, "u1", 10)                  # retried from the start on Conflict / Deadlock
with db.transaction():                  # no automatic rerun: a Conflict reaches the caller
    ...
```
A transaction nested in another (same greenlet) joins it: only the outermost one commits.
"""
import contextlib
import logging
import random
import time

import gevent
from gevent import getcurrent

from zpomelo import greenpool
from zpomelo.db import transaction as txmod
from zpomelo.db.cache import DocumentCache
from zpomelo.db.deadlines import SharedDeadlines
from zpomelo.db.errors import Conflict, DbError, StoreUnavailable, TooManyRetries, TransactionAborted
from zpomelo.db.locks import LockManager
from zpomelo.db.model import SEP

logger = logging.getLogger(__name__)

REQUEST_PREFIX = "$req" + SEP      # records without expiry (requestTtl 0), and before it existed
BUCKET_PREFIX = "$rq" + SEP        # "$rq|<bucket>|<request id>": records that expire
PURGE_EVERY_MAX = 600.0            # seconds between purges of expired records, at most


class Models(dict):
    """The registered models, by class name, as keys and as attributes (``app.db.models.Player``).

    Each model is also set as an instance attribute: a handler reads ``app.db.models.Player``
    on every request, and a name found only through ``__getattr__`` costs a failed lookup and
    an AttributeError first (about 1 us)."""

    def __setitem__(self, name, model):
        super().__setitem__(name, model)
        if not hasattr(dict, name):     # a model named like a dict method stays an item only
            self.__dict__[name] = model

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError("no model %r is registered (models: %s); declare it in "
                                 "app/models/*.py" % (name, ", ".join(self) or "none")) from None


class Database:
    def __init__(self, engine, lock_timeout=5.0, max_retries=100, cache_size=100000,
                 commit_timeout=30.0, request_ttl=86400.0, clock=time.time):
        """request_ttl: seconds a request id's record is kept (a retry within it applies once);
        0 or None keeps records forever. clock: the wall clock of the buckets (tests set it)."""
        self.engine = engine
        self.clock = clock
        greenpool.after_each_job(txmod.roll_back_left_open)
        self._deadlines = SharedDeadlines()   # bounds every wait on the engine
        self.request_ttl = float(request_ttl) if request_ttl else None
        self._purger = None
        if self.request_ttl:
            # Redis expires the records itself; SQLite deletes buckets nobody reads any more
            engine.expire_prefix(BUCKET_PREFIX, 2 * self.request_ttl + 1)
            if getattr(engine, "delete_range_async", None) is not None:
                self._purger = gevent.spawn(self._purge_loop)
        self.lock_timeout = lock_timeout
        self.max_retries = max_retries
        self.commit_timeout = commit_timeout
        self.locks = LockManager()
        self.cache = DocumentCache(cache_size)
        self.models = Models()    # name -> Model class; also attributes: db.models.Player
        self.stats = {"commits": 0, "rollbacks": 0, "conflicts": 0, "retries": 0, "replays": 0}

    def register(self, *models):
        for model in models:
            self.models[model.__name__] = model
        return self

    # -- reads (a transaction holds the key's lock when it calls this) ---------------------
    def load(self, key):
        """Read a document the cache does not hold from the store, and cache it (a transaction
        asks ``cache.get(key)`` first)."""
        version, data = self._wait(self.engine.load_async(key), "reading %s" % key)
        self.cache.put(key, version, data)
        return version, data

    # -- running transactions ----------------------------------------------------------------
    def begin(self, seq=None):
        """A transaction bound to the calling greenlet (end it with ``commit`` or ``rollback``)."""
        return txmod.Transaction(self, seq)

    @contextlib.contextmanager
    def transaction(self):
        """A transaction for this block (joins the greenlet's current one when there is one).

        Leaving the block commits; an exception rolls back and propagates. A ``Conflict`` at
        commit is raised, not retried: use ``run(fn)`` to be retried from the start.
        """
        outer = txmod.current()
        if outer is not None:
            if outer.db is not self:
                raise TransactionAborted("a transaction of another Database is already running here")
            outer.depth += 1
            try:
                yield outer
            except BaseException as exc:
                if outer.doomed is None:  # the outer one may not commit half of this block
                    outer.doomed = TransactionAborted(
                        "a nested transaction block failed (%s: %s)" % (type(exc).__name__, exc))
                raise
            finally:
                outer.depth -= 1
            return
        tx = self.begin()
        try:
            yield tx
            self.commit(tx)
        except BaseException:
            self.rollback(tx)
            raise

    def run(self, fn, *args, request_id=None, **kwargs):
        """``fn(*args, **kwargs)`` in a transaction, retried from the start on Conflict/Deadlock.

        With ``request_id``, the result is stored with the commit; a later run with the same id
        returns it without running ``fn`` again (a retried request applies once).
        """
        if getcurrent() in txmod.running:
            return self._call(fn, args, kwargs, request_id)
        seq = txmod.next_seq()
        last = None
        for attempt in range(self.max_retries + 1):
            tx = txmod.Transaction(self, seq)
            try:
                if request_id is None:
                    result = fn(*args, **kwargs)
                else:
                    result = self._call(fn, args, kwargs, request_id)
                self.commit(tx)
                return result
            except DbError as exc:
                touched = tx.touched()
                self.rollback(tx)
                if not exc.retryable:
                    raise
                last = exc
                if isinstance(exc, Conflict):   # the cache was stale; a Deadlock says nothing of it
                    self.cache.drop(exc.keys or touched)
                self.stats["retries"] += 1
                gevent.sleep(random.random() * min(0.0005 * (attempt + 1), 0.02))
            except BaseException:
                self.rollback(tx)
                raise
        raise TooManyRetries("the transaction conflicted %d times in a row (last: %s); try again "
                             "later, or route its documents to one server" % (
                                 self.max_retries + 1, last)) from last

    def _call(self, fn, args, kwargs, request_id):
        if request_id is None:
            return fn(*args, **kwargs)
        tx = txmod.current_or_fail()
        keys = self.request_keys(request_id, self.clock())
        for key in keys:
            record = tx.raw_get(key)
            if record is not None:
                self.stats["replays"] += 1
                return record["r"]
        result = fn(*args, **kwargs)
        tx.raw_put(keys[0], {"r": result, "t": self.clock()})
        return result

    # -- request records: kept request_ttl seconds at least, 2 x request_ttl at most ----------
    def bucket(self, now):
        return int(now // self.request_ttl)

    def request_keys(self, request_id, now):
        """Where a request id's record may be: this time bucket's key (written), then the
        previous bucket's. A bucket older than that is never read again, so deleting it cannot
        race a transaction that read it."""
        if self.request_ttl is None:
            return [REQUEST_PREFIX + str(request_id)]
        bucket = self.bucket(now)
        return ["%s%012d%s%s" % (BUCKET_PREFIX, b, SEP, request_id) for b in (bucket, bucket - 1)]

    def purge_requests(self, now=None):
        """Delete the records of buckets no transaction reads any more (and records of
        REQUEST_PREFIX, from before expiry existed): the number of records deleted."""
        dead_below = "%s%012d%s" % (BUCKET_PREFIX, self.bucket(self.clock() if now is None else now) - 1, SEP)
        deleted = self._wait(self.engine.delete_range_async(BUCKET_PREFIX, dead_below),
                             "purging expired request records")
        deleted += self._wait(self.engine.delete_range_async(
            REQUEST_PREFIX, REQUEST_PREFIX[:-1] + chr(ord(SEP) + 1)), "purging request records")
        self.cache.drop_range(BUCKET_PREFIX, dead_below)
        return deleted

    def _purge_loop(self):
        every = min(max(self.request_ttl / 2, 0.5), PURGE_EVERY_MAX)
        while True:
            gevent.sleep(every)
            try:
                deleted = self.purge_requests()
                if deleted:
                    logger.info("deleted %d expired request records", deleted)
            except Exception as exc:    # the store is down: the next round tries again
                logger.warning("purging expired request records failed: %s", exc)

    def commit(self, tx):
        if tx.state != "active":
            raise TransactionAborted("this transaction already %s" % tx.state)
        if tx.doomed is not None:
            raise tx.doomed
        checks, writes = tx.changes()
        if tx.doomed is not None:
            raise tx.doomed
        try:
            versions = self._wait(self.engine.commit_async(checks, writes), writes, shield=True)
        except DbError as exc:
            if isinstance(exc, StoreUnavailable):
                self.cache.drop(checks)
            if getattr(exc, "retryable", False):
                self.stats["conflicts"] += 1
            raise
        self.stats["commits"] += 1
        tx.finish_commit(versions, writes)

    def rollback(self, tx):
        if tx.state == "active":
            self.stats["rollbacks"] += 1
        tx.rollback()

    def _wait(self, result, what, shield=False):
        """Wait for an engine call. With ``shield``, an interruption (the handler's timeout
        firing) does not abandon a commit the store may already be applying: we wait for its
        outcome, so the answer tells the truth about it. ``what``: the call, for the error
        message, or the writes of a commit (formatted only if it is needed)."""
        if result.ready():
            return result.get()
        deadline = time.monotonic() + self.commit_timeout
        try:
            if self._deadlines.wait(result, self.commit_timeout):   # the usual case: one wait
                return result.get()
        except BaseException as exc:
            if not shield:
                raise
            return self._wait_interrupted(result, what, deadline, exc)
        if not result.ready():
            raise self._unknown_outcome(what)
        return result.get()

    def _wait_interrupted(self, result, what, deadline, interrupted):
        """A shielded wait that was interrupted: wait on for the outcome, then let the
        interruption win unless the store said yes."""
        while not result.ready():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._unknown_outcome(what)
            try:
                self._deadlines.wait(result, remaining)
            except BaseException:  # noqa: B902 - the first interruption is the one reported
                pass
        if not result.successful() or type(interrupted).__name__ == "GreenletExit":
            raise interrupted  # the store said no (or we are killed): the interruption wins
        return result.get()

    def _unknown_outcome(self, what):
        return StoreUnavailable("the store did not finish %s within %.3gs; the outcome is unknown" % (
            what if isinstance(what, str) else "committing %d documents" % len(what), self.commit_timeout))

    def close(self):
        self._deadlines.close()
        if self._purger is not None:
            self._purger.kill()
        self.engine.close()
