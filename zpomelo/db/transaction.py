"""A transaction: the documents it locked and read, their new values, and its outbox.

Bound to the greenlet that began it (``current()``); models find it there. Reads lock the
document (``LockManager``) and copy its committed bytes into private instances, so nothing a
handler changes is visible to anyone before commit, and a rollback has nothing to undo.
Commit sends, in one atomic call to the store, the version of every document read and the new
bytes of every document changed; the store refuses it (``Conflict``) if any version moved.
After the store said yes, and only then, the outbox (pushes, RPC notifies) is sent.
"""
import itertools
import logging
import time

from gevent import getcurrent

from zpomelo.db.codec import pack, unpack
from zpomelo.db.errors import DbError, NoTransaction, TransactionAborted, ValidationError
from zpomelo.db.locks import printable
from zpomelo.db.model import document_key, index_key

logger = logging.getLogger(__name__)

running = {}           # greenlet -> its Transaction (what current() looks up)
_sequence = itertools.count(1)


def current():
    """The transaction of the calling greenlet, or None."""
    return running.get(getcurrent())


def current_or_fail():
    tx = running.get(getcurrent())
    if tx is None:
        raise NoTransaction(
            "models are used inside a transaction: a handler on a server with app.db runs in "
            "one, elsewhere use `with app.db.transaction():` or app.db.run(fn)")
    return tx


def after_commit(fn, *args):
    """Run ``fn(*args)`` after the current transaction commits (dropped on rollback), or now."""
    tx = running.get(getcurrent())
    if tx is None:
        fn(*args)
    else:
        tx.after_commit(fn, *args)


def roll_back_left_open(greenlet):
    """A pooled job ended with its transaction still open (``db.begin()`` never committed nor
    rolled back): roll it back, so its locks are freed and the greenlet's next job starts clean.
    A Database installs it as a greenpool after-job hook: a process without one pays nothing per
    job."""
    tx = running.get(greenlet)
    if tx is not None:
        logger.error("a job ended with transaction #%d still open (begun by hand, never committed "
                     "or rolled back): rolled back, %d locks freed; end it with commit() or "
                     "rollback(), or use `with app.db.transaction():`", tx.seq, len(tx.held))
        tx.rollback("abandoned by its job")


def next_seq():
    return next(_sequence)


class _Entry:
    __slots__ = ("model", "id", "version", "stored", "value", "deleted")

    def __init__(self, model, id, version, stored):
        self.model = model      # Model subclass, or None for a raw entry (index, request record)
        self.id = id            # the document's id (None for a raw entry)
        self.version = version  # version read from the store (0: never written)
        self.stored = stored    # bytes read (None: absent or deleted)
        self.value = None       # model instance / raw object now (None: absent or deleted)
        self.deleted = False    # deleted in this transaction: do not rebuild from ``stored``


class Transaction:
    """Begun by ``Database.begin`` (or ``run``/``transaction``), bound to the calling greenlet."""
    __slots__ = ("db", "seq", "greenlet", "started", "held", "waiting", "entries", "outbox", "state",
                 "doomed", "depth")

    def __init__(self, db, seq=None):
        self.db = db
        self.seq = seq if seq is not None else next(_sequence)
        greenlet = self.greenlet = getcurrent()
        if greenlet in running:
            raise TransactionAborted("this greenlet already runs a transaction")
        running[greenlet] = self
        self.started = time.monotonic()
        self.held = []          # lock keys (LockManager fills it)
        self.waiting = None     # the lock waiter while blocked (LockManager)
        self.entries = {}
        self.outbox = []
        self.state = "active"
        self.doomed = None      # an error that already decided this transaction's fate
        self.depth = 0

    def describe(self):
        return "transaction #%d (running %.3fs)" % (self.seq, time.monotonic() - self.started)

    # -- reading and writing ---------------------------------------------------------------
    def _check_active(self):
        if self.state != "active":
            raise TransactionAborted("this transaction already %s" % self.state)
        if self.doomed is not None:
            raise self.doomed

    def _load(self, key, model, id=None):
        entry = self.entries.get(key)
        if entry is not None:
            return entry
        if self.state != "active" or self.doomed is not None:
            self._check_active()
        db = self.db
        try:
            db.locks.acquire(self, key, db.lock_timeout)
        except DbError as exc:
            self.doomed = exc
            raise
        version, stored = db.cache.get(key) or db.load(key)
        entry = _Entry(model, id, version, stored)
        self.entries[key] = entry
        return entry

    def get(self, model, id):
        entry = self._load(document_key(model.collection, id), model, id)
        if entry.value is None and entry.stored is not None and not entry.deleted:
            data = unpack(entry.stored)
            if data.keys() != model._field_names:   # stored before the model gained or lost fields
                data = model.from_stored(data)
            entry.value = model(id, data, self)
        return entry.value

    def create(self, model, id, fields):
        if self.get(model, id) is not None:
            raise ValidationError("%s %r already exists" % (model.__name__, id))
        entry = self.entries[model.key_of(id)]
        entry.deleted = False
        entry.value = model(id, model.new_data(fields), self)
        return entry.value

    def delete(self, instance):
        self._check_active()
        if instance._tx is not self:
            raise TransactionAborted("%r belongs to another transaction" % (instance,))
        entry = self.entries[instance.key_of(instance.id)]
        entry.deleted = True
        entry.value = None

    def raw_get(self, key):
        entry = self._load(key, None)
        if entry.value is None and entry.stored is not None and not entry.deleted:
            entry.value = unpack(entry.stored)
        return entry.value

    def raw_put(self, key, value):
        self.raw_get(key)
        entry = self.entries[key]
        entry.deleted = value is None
        entry.value = value

    def find_by(self, model, field, value):
        if field not in model._indexes:
            raise ValidationError("%s.%s is not indexed: declare it Field(..., index=True)" % (
                model.__name__, field))
        ids = self.raw_get(index_key(model.collection, field, value)) or []
        found = {}
        for id in ids:
            doc = self.get(model, id)
            if doc is not None and doc._data.get(field) == value:
                found[id] = doc
        for entry in list(self.entries.values()):  # documents changed in this transaction
            doc = entry.value
            if entry.model is not None and entry.model.collection == model.collection and doc is not None and doc._data.get(field) == value:
                found[doc.id] = doc
        return [found[k] for k in sorted(found, key=str)]

    # -- the outbox --------------------------------------------------------------------------
    def after_commit(self, fn, *args):
        self._check_active()
        self.outbox.append((fn, args))

    # -- ending ------------------------------------------------------------------------------
    def changes(self):
        """(checks, writes): versions of everything read; new bytes (None = delete) of what changed."""
        writes = {}
        checks = {}
        entries = self.entries
        for key, entry in entries.items():   # the usual case: documents of models without indexes
            model = entry.model
            if model is None or model._indexes:
                return self._changes_with_indexes()
            checks[key] = entry.version
            value = entry.value
            new = pack(value._data) if value is not None else None
            if new != entry.stored:
                writes[key] = new
        return checks, writes

    def _changes_with_indexes(self):
        """changes(), when index documents must follow (and raw entries are written too)."""
        writes = {}
        index_moves = []
        for key, entry in list(self.entries.items()):
            if entry.model is None:
                continue
            new = pack(entry.value._data) if entry.value is not None else None
            if new == entry.stored:
                continue
            writes[key] = new
            if entry.model._indexes:
                old_data = unpack(entry.stored) if entry.stored is not None else {}
                new_data = entry.value._data if entry.value is not None else {}
                doc_id = entry.id
                for field in entry.model._indexes:
                    old, now = old_data.get(field), new_data.get(field)
                    if old == now and entry.stored is not None and entry.value is not None:
                        continue
                    if entry.stored is not None and old is not None:
                        index_moves.append((index_key(entry.model.collection, field, old), doc_id, False))
                    if entry.value is not None and now is not None:
                        index_moves.append((index_key(entry.model.collection, field, now), doc_id, True))
        for ikey, doc_id, add in index_moves:
            ids = list(self.raw_get(ikey) or [])
            if add and doc_id not in ids:
                ids.append(doc_id)
            elif not add and doc_id in ids:
                ids.remove(doc_id)
            self.raw_put(ikey, sorted(ids, key=str) or None)
        for key, entry in self.entries.items():
            if entry.model is None:
                new = pack(entry.value) if entry.value is not None else None
                if new != entry.stored:
                    writes[key] = new
        checks = {key: entry.version for key, entry in self.entries.items()}
        return checks, writes

    def finish_commit(self, versions, writes):
        """The store accepted: remember the new bytes, send the outbox, free the locks."""
        self.state = "committed"
        for key, version in versions.items():
            self.db.cache.put(key, version, writes[key])
        outbox, self.outbox = self.outbox, []
        self._end()  # waiters only run once we yield: our messages still leave before theirs
        if outbox:
            self._flush(outbox)

    def _flush(self, outbox):
        for fn, args in outbox:
            try:
                fn(*args)
            except Exception:
                logger.exception("a message sent after commit failed (%r)", fn)

    def rollback(self, reason="rolled back"):
        if self.state != "active":
            return
        self.state = reason
        self.outbox = []
        self._end()

    def _end(self):
        if running.get(self.greenlet) is self:
            del running[self.greenlet]
        self.db.locks.release_all(self)
        # each instance handed out points back here (instance._tx): dropping the entries breaks
        # that cycle, so an ended transaction is freed at once, not by the cyclic GC (measured:
        # the collections cost more than the rest of a cached read)
        self.entries = {}

    def touched(self):
        return list(self.entries)

    def __repr__(self):
        return "<Transaction #%d %s, %d documents: %s>" % (
            self.seq, self.state, len(self.entries), ", ".join(printable(k) for k in self.entries))
