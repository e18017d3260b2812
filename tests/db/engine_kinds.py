"""The engines the store tests run on. "sqlite" is synchronous FULL (COMMIT in a thread, with its
fsync); "sqlite-normal" is NORMAL, whose COMMIT runs on the hub: the tests of the commit path
(counters, transfers, kill -9) run on it too with @pytest.mark.parametrize("engine_kind", ALL_ENGINES).
"""
ALL_ENGINES = ["sqlite", "sqlite-normal", "redis"]


def sqlite_options(kind):
    """The db.json fields of an SQLite kind ("sqlite" or "sqlite-normal")."""
    return {"engine": "sqlite", "synchronous": "NORMAL" if kind == "sqlite-normal" else "FULL"}
