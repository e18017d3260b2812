"""The store comes from ZPOMELO_BENCH_DB (db.json fields as JSON); the plain route is excluded."""
import json
import os


def configure(app):
    options = json.loads(os.environ.get("ZPOMELO_BENCH_DB", "{}"))
    if options:
        options["transactions"] = {"exclude": ["game.gameHandler.plain"]}
        app.set("db", options)
