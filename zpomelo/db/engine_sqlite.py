"""The embedded engine: one SQLite file in WAL mode (standard library, nothing to install).

Table ``docs(k, v, d)``: key, version, msgpack bytes (NULL for a deleted document; its version
is kept so a document deleted and recreated never shows an old version again).

Commits are grouped: one writer greenlet takes every commit waiting (up to ``max_batch``) and
applies them in a single SQLite transaction (``BEGIN IMMEDIATE`` .. ``COMMIT``) in a native
thread, checking each one's versions just before writing it, so a batch behaves exactly like
its commits one after the other, for the price of one fsync. Reads run in native threads on
their own connections; the gevent hub never waits for the disk.

Durability: ``synchronous=FULL`` (default) makes every acknowledged commit survive a crash of
the process, of the OS, or power loss; ``NORMAL`` survives the process being killed (the data
is in the OS page cache) but may lose the last commits on power loss or an OS crash. Several
server processes on one machine may share the file: SQLite's file lock orders their batches and
the version check makes them correct (never on a network file system).
"""
import logging
import os
import sqlite3

import gevent
from gevent import monkey
from gevent.event import AsyncResult, Event

from zpomelo.db.errors import Conflict, StoreUnavailable
from zpomelo.db.locks import printable
from zpomelo.db.offload import Offloader

logger = logging.getLogger(__name__)

# the real thread id even in a monkey-patched server (these run in native threads)
_native_ident = monkey.get_original("_thread", "get_ident")

SCHEMA = "CREATE TABLE IF NOT EXISTS docs (k TEXT PRIMARY KEY, v INTEGER NOT NULL, d BLOB) WITHOUT ROWID"
SYNC_MODES = ("FULL", "NORMAL", "EXTRA")


class SqliteEngine:
    name = "sqlite"

    def __init__(self, path, synchronous="FULL", busy_timeout=30.0, max_batch=512, read_threads=3):
        synchronous = str(synchronous).upper()
        if synchronous not in SYNC_MODES:
            raise ValueError("synchronous must be one of %s, not %r" % (", ".join(SYNC_MODES), synchronous))
        self.path = os.path.abspath(path)
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.max_batch = max_batch
        self._offload = Offloader(read_threads + 1, cooperative=False)
        self._readers = {}   # native thread id -> its own connection (only that thread adds it)
        self._writer_conn = self._connect()
        self._writer_conn.execute(SCHEMA)
        self._queue = []
        self._wakeup = Event()
        self._closed = False
        self.stats = {"batches": 0, "commits": 0, "conflicts": 0}
        self._writer = gevent.spawn(self._write_loop)

    def _connect(self):
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=%s" % self.synchronous)
        return conn

    # -- reads -----------------------------------------------------------------------------
    def _reader(self):
        ident = _native_ident()
        conn = self._readers.get(ident)
        if conn is None:
            conn = self._readers[ident] = self._connect()
        return conn

    def _load(self, key):
        row = self._reader().execute("SELECT v, d FROM docs WHERE k = ?", (key,)).fetchone()
        return (row[0], row[1]) if row is not None else (0, None)

    def load_async(self, key):
        if self._closed:
            raise StoreUnavailable("the SQLite store %s is closed" % self.path)
        return self._offload.thread(self._guarded, self._load, key)

    def _guarded(self, fn, *args):
        try:
            return fn(*args)
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite %s failed: %s" % (self.path, exc)) from None

    # -- commits ----------------------------------------------------------------------------
    def commit_async(self, checks, writes):
        result = AsyncResult()
        if self._closed:
            result.set_exception(StoreUnavailable("the SQLite store %s is closed" % self.path))
            return result
        self._queue.append((checks, writes, result))
        self._wakeup.set()
        return result

    def _write_loop(self):
        while True:
            self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch = self._queue[:self.max_batch]
                del self._queue[:len(batch)]
                outcomes = self._apply(batch)
                for (_, _, result), outcome in zip(batch, outcomes):
                    if isinstance(outcome, Exception):
                        result.set_exception(outcome)
                    else:
                        result.set(outcome)
            if self._closed:
                return

    def _apply(self, batch):
        """One SQLite transaction for the whole batch.

        BEGIN (which may wait for another process's batch) and COMMIT (the fsync) run in a native
        thread; the checks and writes in between touch only the page cache and run here, on the
        hub: a native thread must win the GIL back after every statement, which costs up to the
        interpreter's switch interval (5 ms) each time while this process is busy serving."""
        conn = self._writer_conn
        thread = self._offload.thread
        try:
            thread(conn.execute, "BEGIN IMMEDIATE").get()
            try:
                outcomes = [self._apply_one(conn, checks, writes) for checks, writes, _ in batch]
                thread(conn.execute, "COMMIT").get()
            except BaseException:
                thread(self._rollback).get()
                raise
        except sqlite3.Error as exc:
            logger.error("SQLite %s: a batch of %d commits failed: %s", self.path, len(batch), exc)
            error = StoreUnavailable("SQLite %s failed (nothing of this commit was written): %s" % (
                self.path, exc))
            return [error] * len(batch)
        self.stats["batches"] += 1
        return outcomes

    def _rollback(self):
        try:
            self._writer_conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _apply_one(self, conn, checks, writes):
        current = {}
        stale = []
        for key, version in checks.items():
            row = conn.execute("SELECT v FROM docs WHERE k = ?", (key,)).fetchone()
            now = row[0] if row is not None else 0
            current[key] = now
            if now != version:
                stale.append(key)
        if stale:
            self.stats["conflicts"] += 1
            return Conflict("another server changed %s since this transaction read it" % (
                ", ".join(printable(k) for k in stale[:5])), stale)
        versions = {}
        for key, data in writes.items():
            version = current.get(key, 0) + 1
            conn.execute("INSERT OR REPLACE INTO docs (k, v, d) VALUES (?, ?, ?)", (key, version, data))
            versions[key] = version
        self.stats["commits"] += 1
        return versions

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        self._writer.join(timeout=self.busy_timeout)
        self._offload.close()
        for conn in [self._writer_conn, *self._readers.values()]:
            try:
                conn.close()
            except sqlite3.Error:
                pass
