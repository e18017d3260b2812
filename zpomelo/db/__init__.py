"""Transactional game state: models, per-request transactions, pushes sent on commit.

See README "State and transactions"; the layers, lowest first: errors, codec, model, locks,
cache, offload -> engines (engine_sqlite, engine_redis) -> transaction -> database -> config
(engine from config/db.json) -> integration (handlers run in a transaction; pushes find the
outbox through after_commit).
"""
from zpomelo.db.database import Database
from zpomelo.db.errors import (Conflict, DbError, Deadlock, LockTimeout, NoTransaction,
                               StoreUnavailable, TooManyRetries, TransactionAborted, ValidationError)
from zpomelo.db.model import Field, Model
from zpomelo.db.transaction import after_commit, current

__all__ = ["Database", "Model", "Field", "after_commit", "current", "DbError", "Conflict",
           "Deadlock", "LockTimeout", "NoTransaction", "StoreUnavailable", "TooManyRetries",
           "TransactionAborted", "ValidationError"]
