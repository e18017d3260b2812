"""Exclusive per-document locks inside one server, with deadlock detection.

A transaction locks every document it reads or writes and keeps the locks until it ends. Waits
are FIFO. Each transaction waits for at most one lock at a time (it runs in one greenlet), so the
wait-for graph is a set of chains and a cycle can only close when a new wait begins: that is
when we look for one. The youngest transaction of a cycle (highest sequence number: it has done
the least work) is aborted at once with ``Deadlock`` and retried by its runner, instead of
everybody waiting for a timeout. ``LockTimeout`` bounds any other wait.

No lock lives outside this process, so a server that dies holds nothing anyone waits for; the
store's version check (not these locks) is what makes two servers safe.
"""
import collections

from gevent.event import AsyncResult

from zpomelo.db.errors import Deadlock, LockTimeout


class _Lock:
    __slots__ = ("owner", "waiters")

    def __init__(self, owner):
        self.owner = owner
        self.waiters = None     # a deque once somebody waits (most locks never see a waiter)


class _Waiter:
    __slots__ = ("tx", "key", "result")

    def __init__(self, tx, key):
        self.tx = tx
        self.key = key
        self.result = AsyncResult()


class LockManager:
    """Locks for transactions; a transaction needs ``seq``, ``held`` (list) and ``waiting``."""

    def __init__(self):
        self._locks = {}
        self.stats = {"waits": 0, "deadlocks": 0, "timeouts": 0}

    def owner(self, key):
        lock = self._locks.get(key)
        return lock.owner if lock is not None else None

    def acquire(self, tx, key, timeout):
        lock = self._locks.get(key)
        if lock is None:
            self._locks[key] = _Lock(tx)
            tx.held.append(key)
            return
        if lock.owner is tx:
            return
        self._break_cycle(tx, lock.owner, key)
        waiter = _Waiter(tx, key)
        if lock.waiters is None:
            lock.waiters = collections.deque()
        lock.waiters.append(waiter)
        tx.waiting = waiter
        self.stats["waits"] += 1
        try:
            waiter.result.wait(timeout)
        except BaseException:  # killed, or the handler's own timeout fired meanwhile
            if lock.owner is not tx:
                self._forget(lock, waiter)
            raise
        finally:
            tx.waiting = None
        if waiter.result.ready():
            waiter.result.get()  # raises Deadlock when this transaction was the victim
            return
        if lock.owner is tx:
            return
        self._forget(lock, waiter)
        self.stats["timeouts"] += 1
        raise LockTimeout(
            "waited more than %.3gs for a lock on %s (held by %s); the transaction was rolled "
            "back: retry the request, or raise lockTimeout if transactions are expected to be "
            "this long" % (timeout, printable(key), lock.owner.describe()))

    def _forget(self, lock, waiter):
        try:
            lock.waiters.remove(waiter)
        except (ValueError, AttributeError):
            pass

    def _break_cycle(self, tx, owner, key):
        cycle = [tx]
        seen = {id(tx)}
        current = owner
        while current is not tx:
            if current is None or current.waiting is None or id(current) in seen:
                return  # the chain ends (or loops elsewhere, which its own waiter resolved)
            seen.add(id(current))
            cycle.append(current)
            lock = self._locks.get(current.waiting.key)
            current = lock.owner if lock is not None else None
        self.stats["deadlocks"] += 1
        victim = max(cycle, key=lambda t: t.seq)
        error = Deadlock("deadlock on %s between %d transactions: the youngest was aborted "
                         "and is retried" % (printable(key), len(cycle)))
        if victim is tx:
            raise error
        waiter = victim.waiting
        self._forget(self._locks[waiter.key], waiter)
        victim.waiting = None
        waiter.result.set_exception(error)

    def release_all(self, tx):
        """Hand every lock of ``tx`` to its first waiter (FIFO), or free it."""
        for key in tx.held:
            lock = self._locks.get(key)
            if lock is None or lock.owner is not tx:
                continue
            if lock.waiters:
                waiter = lock.waiters.popleft()
                lock.owner = waiter.tx
                waiter.tx.held.append(key)
                waiter.tx.waiting = None
                waiter.result.set(True)
            else:
                del self._locks[key]
        tx.held = []

    def __len__(self):
        return len(self._locks)


def printable(key):
    return key.replace("\x1f", "/")
