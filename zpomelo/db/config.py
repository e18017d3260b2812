"""The store of a project: ``config/db.json`` (keyed by environment or not) and ``app.set("db", {...})``.

```json
{"development": {"engine": "sqlite", "path": "data/game.db"},
 "production":  {"engine": "redis", "url": "redis://10.0.0.5:6379/0", "prefix": "game:"}}
```
Every field is documented in config/README.md; a misspelled one is refused with a ConfigError.
No file and no ``db`` setting: no store, ``app.db`` is None and handlers run as before.
"""
import difflib
import os

from zpomelo.config import _read_json, _select_env, find_config_file
from zpomelo.db.database import Database
from zpomelo.errors import ConfigError

DB_FILE = "db.json"
ENGINES = ("sqlite", "redis")

DEFAULTS = {
    "engine": "sqlite",
    "path": None,               # sqlite: file, relative to the project; default data/<env>.db
    "synchronous": "FULL",      # sqlite: FULL (survives power loss) or NORMAL (survives kill -9)
    "url": "redis://127.0.0.1:6379/0",
    "sentinels": None,          # redis: ["host:port", ...] of Sentinels naming the primary
    "sentinelMaster": "zpomelo",  # redis: the name the Sentinels monitor the primary by
    "sentinelPassword": None,   # redis: the Sentinels' own password (their requirepass)
    "prefix": "zp:",
    "waitReplicas": 0,
    "waitTimeout": 1.0,
    "lockTimeout": 5.0,
    "maxRetries": 100,
    "cacheSize": 100000,
    "commitTimeout": 30.0,
    "transactions": None,       # {"serverTypes": [...], "exclude": [...]}; see TransactionFilter
    "requestIdField": None,     # body field carrying a client's request id (idempotent retries)
    "requestTtl": 86400,        # seconds a request id's record is kept at least (0: forever)
}


def load_options(base_dir, env, override=None):
    """The merged options dict, or None when the project configures no store."""
    path = find_config_file(base_dir, env, DB_FILE)
    options = None
    if path.is_file():
        data = _select_env(_read_json(path), path, env, required=False)
        if not isinstance(data, dict):
            raise ConfigError("must be a JSON object (see config/README.md, db.json)", path=path)
        if data and str(env) not in data and not set(data) & set(DEFAULTS) \
                and all(isinstance(v, dict) for v in data.values()):
            data = None  # keyed by environment, but not for this one: no store here
        options = dict(data) if data is not None else None
    if override is not None:
        if not isinstance(override, dict):
            raise ConfigError("app.set(\"db\", ...) takes a dict of db.json fields")
        options = dict(options or {}, **override)
    if options is None:
        return None
    check(options, path)
    return dict(DEFAULTS, **options)


def check(options, path=None):
    for key in options:
        if key not in DEFAULTS:
            close = difflib.get_close_matches(key, list(DEFAULTS), n=1)
            raise ConfigError("unknown db field %r%s; the fields are %s" % (
                key, " (did you mean %r?)" % close[0] if close else "", ", ".join(DEFAULTS)),
                path=path)
    if options.get("engine", "sqlite") not in ENGINES:
        raise ConfigError("db engine must be one of %s, not %r" % (
            ", ".join(ENGINES), options.get("engine")), path=path)
    if options.get("sentinels") is not None:
        sentinel_addresses(options["sentinels"], path)
        if str(options.get("url", "")).startswith("rediss:"):
            raise ConfigError("db: TLS (rediss://) is not supported with sentinels yet; use "
                              "redis:// on a private network, or url without sentinels", path=path)


def sentinel_addresses(sentinels, path=None):
    """["host:port", ...] -> [(host, port), ...]; a ConfigError saying what is wrong otherwise."""
    if not isinstance(sentinels, list) or not sentinels:
        raise ConfigError("db sentinels must be a non-empty list of \"host:port\" strings, got %r" % (
            sentinels,), path=path)
    addresses = []
    for entry in sentinels:
        host, _, port = entry.rpartition(":") if isinstance(entry, str) else ("", "", "")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError("db sentinels: %r is not \"host:port\" (for example "
                              "\"10.0.0.7:26379\")" % (entry,), path=path)
        addresses.append((host, int(port)))
    return addresses


def make_engine(options, base_dir, env):
    if options["engine"] == "sqlite":
        from zpomelo.db.engine_sqlite import SqliteEngine
        path = options["path"] or os.path.join("data", "%s.db" % env)
        if not os.path.isabs(path):
            path = os.path.join(base_dir, path)
        return SqliteEngine(path, synchronous=options["synchronous"])
    from zpomelo.db.engine_redis import RedisEngine
    sentinels = options["sentinels"]
    return RedisEngine(options["url"], prefix=options["prefix"],
                       wait_replicas=options["waitReplicas"], wait_timeout=options["waitTimeout"],
                       sentinels=sentinel_addresses(sentinels) if sentinels is not None else None,
                       sentinel_master=options["sentinelMaster"],
                       sentinel_password=options["sentinelPassword"])


def open_database(options, base_dir, env):
    return Database(make_engine(options, base_dir, env), lock_timeout=float(options["lockTimeout"]),
                    max_retries=int(options["maxRetries"]), cache_size=int(options["cacheSize"]),
                    commit_timeout=float(options["commitTimeout"]),
                    request_ttl=float(options["requestTtl"] or 0))
