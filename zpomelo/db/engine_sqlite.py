"""The embedded engine: one SQLite file in WAL mode (standard library, nothing to install).

Table ``docs(k, v, d)``: key, version, msgpack bytes (NULL for a deleted document; its version
is kept so a document deleted and recreated never shows an old version again).

Commits are grouped: one writer greenlet takes every commit waiting (up to ``max_batch``) and
applies them in a single SQLite transaction (``BEGIN IMMEDIATE`` .. ``COMMIT``), checking each
one's versions just before writing it, so a batch behaves exactly like its commits one after the
other, for the price of one fsync. What may wait runs in native threads: COMMIT with ``FULL`` or
``EXTRA`` (its fsync), a BEGIN while another process holds the file, reads of documents not
cached, checkpoints; the checks and writes themselves only touch the page cache and run on the
hub. With ``NORMAL`` the COMMIT runs on the hub too: it only write()s the batch's pages to the WAL
(no fsync), a few tens of microseconds, while handing it to a thread and back costs more CPU
(waking the thread, winning the GIL back) and adds latency to every commit of the batch.

Durability: ``synchronous=FULL`` (default) makes every acknowledged commit survive a crash of
the process, of the OS, or power loss; ``NORMAL`` survives the process being killed (the data
is in the OS page cache) but may lose the last commits on power loss or an OS crash. Several
server processes on one machine may share the file: SQLite's file lock orders their batches and
the version check makes them correct (never on a network file system).
"""
import logging
import os
import sqlite3
import sys

from gevent import monkey

from zpomelo.db.errors import Conflict, StoreUnavailable
from zpomelo.db.group_commit import GroupCommitter
from zpomelo.db.locks import printable
from zpomelo.db.offload import Offloader

logger = logging.getLogger(__name__)

# the real thread id even in a monkey-patched server (these run in native threads)
_native_ident = monkey.get_original("_thread", "get_ident")

SCHEMA = "CREATE TABLE IF NOT EXISTS docs (k TEXT PRIMARY KEY, v INTEGER NOT NULL, d BLOB) WITHOUT ROWID"
SWITCH_INTERVAL = 0.001
CHECKPOINT_EVERY = 2000   # commits between checkpoints (WAL pages back into the database file)
SYNC_MODES = ("FULL", "NORMAL", "EXTRA")
DELETE_SLICE = 1000       # rows per DELETE of delete_range (the write lock is held that long)


def _as_blob(data):
    """What a document's bytes are bound as: a bytearray. The sqlite3 module binds exact str,
    int, float and bytearray as they are, but runs anything else, bytes included, through its
    adapter lookup, which asks the PrepareProtocol type for ``__adapt__`` and formats an
    AttributeError to throw away: 2,000 instructions per document written (callgrind), about
    0.35 us, where copying a document's bytes costs a tenth of that."""
    return data if data is None else bytearray(data)


class _Refused(Exception):
    """A version check failed on the fast path of a batch."""


class SqliteEngine:
    name = "sqlite"

    def __init__(self, path, synchronous="FULL", busy_timeout=30.0, max_batch=512, read_threads=3,
                 commit_in_thread=None):
        """commit_in_thread: run COMMIT in a native thread; None: only when it fsyncs (not NORMAL)."""
        synchronous = str(synchronous).upper()
        if synchronous not in SYNC_MODES:
            raise ValueError("synchronous must be one of %s, not %r" % (", ".join(SYNC_MODES), synchronous))
        self.path = os.path.abspath(path)
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        self.synchronous = synchronous
        self.commit_in_thread = synchronous != "NORMAL" if commit_in_thread is None else bool(commit_in_thread)
        self.busy_timeout = busy_timeout
        self._offload = Offloader(read_threads + 1, cooperative=False)
        self._readers = {}   # native thread id -> its own connection (only that thread adds it)
        self._writer_conn = self._connect()
        self._writer_cursor = self._writer_conn.cursor()
        self._writer_conn.execute(SCHEMA)
        # the writer never waits inside SQLite on the hub: a busy file is retried in a thread
        self._writer_conn.execute("PRAGMA busy_timeout=0")
        # checkpoints run in a thread on their own connection, not inside a commit on the hub
        self._writer_conn.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointing = None
        # A native thread finishing a COMMIT must win the GIL back from the busy hub, which lets
        # go only every switch interval (5 ms by default): that wait would be added to every
        # commit's latency. 1 ms costs nothing measurable here (the hub is the only Python thread).
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        self.stats = {"batches": 0, "commits": 0, "conflicts": 0}
        self._commits = GroupCommitter(self._apply, max_batch, lambda: StoreUnavailable(
            "the SQLite store %s is closed" % self.path))

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
        if self._commits.closed:
            raise StoreUnavailable("the SQLite store %s is closed" % self.path)
        return self._offload.thread(self._guarded, self._load, key)

    def _guarded(self, fn, *args):
        try:
            return fn(*args)
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite %s failed: %s" % (self.path, exc)) from None

    # -- expiring records (Database.request_ttl) --------------------------------------------
    def expire_prefix(self, prefix, seconds):
        """Nothing to do here: the Database deletes what expired with delete_range_async."""

    def delete_range_async(self, low, high):
        """Delete every document whose key is in [low, high), versions too (for records nobody
        reads again); the number deleted. In a thread, in slices, so commits interleave."""
        if self._commits.closed:
            raise StoreUnavailable("the SQLite store %s is closed" % self.path)
        return self._offload.thread(self._guarded, self._delete_range, low, high)

    def _delete_range(self, low, high):
        conn = self._reader()
        deleted = 0
        while True:
            count = conn.execute("DELETE FROM docs WHERE k IN (SELECT k FROM docs WHERE k >= ? "
                                 "AND k < ? LIMIT ?)", (low, high, DELETE_SLICE)).rowcount
            deleted += count
            if count < DELETE_SLICE:
                return deleted

    # -- commits ----------------------------------------------------------------------------
    def commit_async(self, checks, writes):
        return self._commits.submit(checks, writes)

    def _apply(self, batch):
        """One SQLite transaction for the whole batch.

        A BEGIN that must wait for another process's batch, and a COMMIT that fsyncs (FULL,
        EXTRA), run in a native thread; the checks and writes in between touch only the page cache
        and run here, on the hub: a native thread must win the GIL back after every statement,
        which costs up to the interpreter's switch interval each time while this process is busy
        serving. The answer of every commit of the batch waits until COMMIT returned, on either
        path: with NORMAL the batch is then in the OS (survives kill -9 of this process)."""
        conn = self._writer_conn
        try:
            self._begin()
            try:
                try:
                    cursor = self._writer_cursor   # one cursor for the batch: conn.execute makes one each time
                    outcomes = [self._apply_fast(cursor, checks, writes) for checks, writes in batch]
                    committed = len(outcomes)
                except _Refused:   # a version moved: redo the batch checking every commit first
                    conn.execute("ROLLBACK")
                    self._begin()
                    outcomes = [self._apply_one(conn, checks, writes) for checks, writes in batch]
                    committed = sum(1 for outcome in outcomes if not isinstance(outcome, Conflict))
                if self.commit_in_thread:
                    self._offload.thread(conn.execute, "COMMIT").get()
                else:
                    conn.execute("COMMIT")
            except BaseException:
                if self.commit_in_thread:
                    self._offload.thread(self._rollback).get()
                else:
                    self._rollback()
                raise
        except sqlite3.Error as exc:
            logger.error("SQLite %s: a batch of %d commits failed: %s", self.path, len(batch), exc)
            return [StoreUnavailable(self._failure_message(exc))] * len(batch)
        self.stats["commits_since_checkpoint"] = self.stats.get("commits_since_checkpoint", 0) + len(batch)
        if self.stats["commits_since_checkpoint"] >= CHECKPOINT_EVERY and self._checkpointing is None:
            self.stats["commits_since_checkpoint"] = 0
            self._checkpointing = self._offload.thread(self._checkpoint)
            self._checkpointing.rawlink(lambda _: setattr(self, "_checkpointing", None))
        self.stats["batches"] += 1
        self.stats["commits"] += committed
        return outcomes

    def _failure_message(self, exc):
        text = str(exc)
        if "locked" in text or "busy" in text:
            return ("SQLite %s stayed locked by another connection for more than busyTimeout "
                    "(%.3gs); nothing of this commit was written: retry, and look for a process "
                    "keeping the file locked (%s)" % (self.path, self.busy_timeout, text))
        if "full" in text:
            return ("SQLite %s: the disk is full; nothing of this commit was written: free space "
                    "on its file system, then retry (%s)" % (self.path, text))
        return "SQLite %s failed (nothing of this commit was written): %s" % (self.path, text)

    def _begin(self):
        """BEGIN IMMEDIATE at once when the file is free (the usual case); when another process
        holds it, wait for it in a thread."""
        try:
            self._writer_conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            self._offload.thread(self._begin_waiting).get()

    def _begin_waiting(self):
        conn = self._writer_conn
        conn.execute("PRAGMA busy_timeout=%d" % int(self.busy_timeout * 1000))
        try:
            conn.execute("BEGIN IMMEDIATE")
        finally:
            conn.execute("PRAGMA busy_timeout=0")

    def _checkpoint(self):
        conn = self._reader()
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            logger.warning("SQLite %s: checkpoint failed: %s", self.path, exc)

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
            conn.execute("INSERT OR REPLACE INTO docs (k, v, d) VALUES (?, ?, ?)", (key, version, _as_blob(data)))
            versions[key] = version
        return versions

    def _apply_fast(self, cursor, checks, writes):
        """The usual case, no version moved: one statement per document written (its version
        check is the UPDATE's WHERE), a SELECT only for documents read and not written. A
        refused statement raises ``_Refused`` with this batch half applied: ``_apply`` rolls
        the batch back and redoes it with ``_apply_one``, which finds who conflicted."""
        execute = cursor.execute
        for key, version in checks.items():
            if key not in writes:
                row = execute("SELECT v FROM docs WHERE k = ?", (key,)).fetchone()
                if (row[0] if row is not None else 0) != version:
                    raise _Refused()
        versions = {}
        for key, data in writes.items():
            version = checks[key]
            blob = data if data is None else bytearray(data)   # see _as_blob
            if version:
                if execute("UPDATE docs SET v = ?, d = ? WHERE k = ? AND v = ?",
                           (version + 1, blob, key, version)).rowcount != 1:
                    raise _Refused()
            else:
                try:
                    execute("INSERT INTO docs (k, v, d) VALUES (?, 1, ?)", (key, blob))
                except sqlite3.IntegrityError:
                    raise _Refused() from None
            versions[key] = version + 1
        return versions

    def close(self):
        if not self._commits.close(timeout=self.busy_timeout):
            return
        self._offload.close()
        for conn in [self._writer_conn, *self._readers.values()]:
            try:
                conn.close()
            except sqlite3.Error:
                pass
