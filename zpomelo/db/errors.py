"""Errors of the transactional store; each says what went wrong and what to do about it."""
from zpomelo.errors import CODE_FAIL, ZpomeloError


class DbError(ZpomeloError):
    """Base of every store error. ``code`` is what a client sees in the error body."""
    code = CODE_FAIL
    retryable = False


class NoTransaction(DbError):
    """A model was used outside a transaction."""


class Conflict(DbError):
    """Another server committed a document this transaction read: it is retried from the start."""
    retryable = True

    def __init__(self, message, keys=()):
        super().__init__(message)
        self.keys = tuple(keys)


class Deadlock(DbError):
    """This transaction was the youngest in a lock cycle: it is aborted at once and retried."""
    retryable = True


class LockTimeout(DbError):
    """A document lock was not granted within the lock timeout."""


class TooManyRetries(DbError):
    """A transaction kept conflicting; the last cause is chained."""


class TransactionAborted(DbError):
    """The transaction was rolled back (or already ended) and can no longer be used."""


class ValidationError(DbError):
    """A field got a value of the wrong type, or a model/document is malformed."""


class StoreUnavailable(DbError):
    """The store (SQLite file, Redis server) failed or did not answer; the outcome is unknown."""
