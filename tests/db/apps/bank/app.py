"""A small bank for the store tests. The store comes from ZPOMELO_TEST_DB (JSON db.json fields)."""
import json
import os

from zpomelo import filters


def configure(app):
    options = os.environ.get("ZPOMELO_TEST_DB")
    if options:
        app.set("db", json.loads(options))
    app.configure("test", "bank", lambda: app.filter(filters.timeout(float(os.environ.get(
        "ZPOMELO_TEST_HANDLER_TIMEOUT", "5")))))
