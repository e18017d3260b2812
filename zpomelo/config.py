"""Pomelo-style configuration: servers.json, master.json, adminUser.json and friends.

Every file lives under ``<base_dir>/config/``. A file may be keyed by environment
(``{"development": {...}, "production": {...}}``) or live un-keyed in ``config/<env>/``;
``config/<env>/<name>`` wins when it exists. Everything a user can get wrong is reported as one
``ConfigError`` naming the file, the server and the field. config/README.md documents the fields.
"""

import json
import logging
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from zpomelo.config_records import (  # noqa: F401 (ServerRecord, MasterRecord, ... are ours)
    BOOL_KEYS, CLUSTER_COUNT, CLUSTER_SIGNAL, EMPTY, INT_KEYS, MAX_PORT, METRICS_PORT,
    MasterRecord, ServerRecord, as_int, as_str, check_host_fields, check_server_type,
    expand_cluster, fail, required, server_label)
from zpomelo.errors import ConfigError

logger = logging.getLogger(__name__)

CONFIG_DIR = "config"
SERVERS_FILE = "servers.json"
MASTER_FILE = "master.json"
ADMIN_USERS_FILE = "adminUser.json"


# --------------------------------------------------------------------------- files

def find_config_file(base_dir, env, name):
    """config/<env>/<name> if it exists, else config/<name> (which may not exist)."""
    config_dir = Path(base_dir) / CONFIG_DIR
    per_env = config_dir / str(env) / name
    if per_env.is_file():
        return per_env
    return config_dir / name


def _read_json(path):
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError("cannot read the file: %s" % (e.strerror or e), path=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError("not valid JSON at line %d column %d: %s; fix the file's syntax"
                          % (e.lineno, e.colno, e.msg), path=path) from None
    except ValueError as e:  # e.g. undecodable UTF-8
        raise ConfigError("not valid JSON: %s" % e, path=path) from None


def _missing_file(base_dir, env, name):
    config_dir = Path(base_dir) / CONFIG_DIR
    return ConfigError("file not found (looked for %s and %s); create one (see config/README.md)"
                       % (config_dir / str(env) / name, config_dir / name),
                       path=config_dir / name)


def _per_env_dir(path, env):
    return path.parent.name == str(env) and path.parent.parent.name == CONFIG_DIR


def _select_env(data, path, env, required):
    """The part of a file's data for env.

    A file in config/<env>/ may still be keyed by env (Pomelo accepts both); a file directly in
    config/ must be keyed by env when ``required``.
    """
    if isinstance(data, dict) and str(env) in data:
        return data[str(env)]
    if _per_env_dir(path, env) or not required:
        return data
    if not isinstance(data, dict):
        raise ConfigError("must be a JSON object keyed by environment, e.g. {\"%s\": ...}" % env,
                          path=path)
    present = ", ".join(sorted(map(str, data))) or "none"
    raise ConfigError("environment %r is not in this file (environments present: %s); add it, "
                      "choose one of those with --env, or put an un-keyed file in %s"
                      % (str(env), present, path.parent / str(env) / path.name), path=path)


def _load_env_section(base_dir, env, name):
    path = find_config_file(base_dir, env, name)
    if not path.is_file():
        raise _missing_file(base_dir, env, name)
    return path, _select_env(_read_json(path), path, env, required=True)


def load_servers(base_dir, env):
    """Every server of env, in file order, with clusterCount entries expanded."""
    path, section = _load_env_section(base_dir, env, SERVERS_FILE)
    if not isinstance(section, dict):
        raise ConfigError("the servers of environment %r must be a JSON object "
                          "{\"<serverType>\": [servers...]}, got %s"
                          % (str(env), type(section).__name__), path=path)
    records = []
    where = {}          # id -> where it was defined
    bound = {}          # (host, port) -> "server <id> field <key>"
    seq = {}
    for server_type, entries in section.items():
        if not isinstance(entries, list):
            raise ConfigError("the servers of type %r must be a list [{...}, ...], got %s"
                              % (server_type, type(entries).__name__), path=path,
                              server=server_label(None, server_type, 0), field="serverType")
        first = entries[0] if entries else None
        check_server_type(server_type, path, server_label(first, server_type, 0))
        for index, entry in enumerate(entries):
            place = "%s[%d]" % (server_type, index)
            if not isinstance(entry, Mapping):
                fail("a server must be a JSON object, got %r" % (entry,), path,
                     server_label(entry, server_type, index), None)
            for record in expand_cluster(entry, server_type, path, seq, index=index):
                _check_unique(record, place, where, bound, path)
                records.append(record)
    logger.debug("%s: %d servers for environment %s", path, len(records), env)
    return records


def _check_unique(record, place, where, bound, path):
    if record.id in where:
        fail("duplicate id: first at %s, again at %s (serverType[index] in the file); give each"
             " server its own id"
             % (where[record.id], place), path, record.id, "id")
    where[record.id] = place
    for key, port in (("port", record.port), ("clientPort", record.client_port),
                      (METRICS_PORT, record.extra.get(METRICS_PORT))):
        if not port:    # None, or 0 = any free port
            continue
        addr = (record.host.lower(), port)
        owner = "server %r (its %s)" % (record.id, key)
        if addr in bound:
            fail("%s:%d is already used by %s; give each server its own port (or 0)"
                 % (record.host, port, bound[addr]), path, record.id, key)
        bound[addr] = owner


def load_master(base_dir, env):
    path, section = _load_env_section(base_dir, env, MASTER_FILE)
    if not isinstance(section, dict):
        raise ConfigError("the master of environment %r must be a JSON object "
                          "{\"id\", \"host\", \"port\"}" % str(env), path=path)
    label = section.get("id") if isinstance(section.get("id"), str) else "master"
    master_id = as_str(section.get("id", "master-server-1"), path, label, "id")
    host = as_str(required(section, "host", "give the address the master binds, e.g. \"127.0.0.1\"",
                           path, master_id), path, master_id, "host")
    port = as_int(required(section, "port", "give the master's port, e.g. 3005", path, master_id),
                  path, master_id, "port", 0, MAX_PORT)
    check_host_fields(section, path, master_id)
    web_port = section.get("adminWebPort")
    if web_port is not None and web_port is not False:
        as_int(web_port, path, master_id, "adminWebPort", 0, MAX_PORT)
    extra = {k: v for k, v in section.items() if k not in ("id", "host", "port")}
    if extra.get(METRICS_PORT) is not None:
        extra[METRICS_PORT] = as_int(extra[METRICS_PORT], path, master_id, METRICS_PORT, 0, MAX_PORT)
    if extra.get("metricsSdFile") is not None:
        as_str(extra["metricsSdFile"], path, master_id, "metricsSdFile")
    return MasterRecord(master_id, host, port, MappingProxyType(extra) if extra else EMPTY)


def load_admin_users(base_dir, env):
    """config/adminUser.json: [{"id", "username", "password", "level"}]; [] when there is none."""
    path = find_config_file(base_dir, env, ADMIN_USERS_FILE)
    if not path.is_file():
        logger.debug("no %s: the admin console accepts no user", path)
        return []
    users = _select_env(_read_json(path), path, env, required=False)
    if not isinstance(users, list):
        raise ConfigError("must be a list of users [{\"id\", \"username\", \"password\", "
                          "\"level\"}], got %s" % type(users).__name__, path=path)
    out = []
    seen = {}
    for index, user in enumerate(users):
        label = "user #%d" % index
        if not isinstance(user, dict):
            fail("must be a JSON object, got %r" % (user,), path, label, None)
        for key in ("username", "password"):
            if not isinstance(user.get(key), str) or not user[key]:
                fail("missing or not a non-empty string", path, label, key)
        label = user["username"]
        if label in seen:
            fail("duplicate username: users #%d and #%d" % (seen[label], index),
                 path, label, "username")
        seen[label] = index
        if user["password"].startswith("pbkdf2_sha256$"):
            from zpomelo.master.admin_users import check_hash_format
            problem = check_hash_format(user["password"])
            if problem:
                fail(problem, path, label, "password")
        user = dict(user)
        user["id"] = str(user.get("id", "user-%d" % (index + 1)))
        user["level"] = as_int(user.get("level", 1), path, label, "level", 0, 2**31)
        out.append(user)
    return out


def load_json_config(base_dir, env, name, default=None):
    """Any JSON file of config/ (dictionary.json, serverProtos.json, ...), env-keyed or plain.

    Returns ``default`` when the file does not exist. A dict holding the env as a key is taken
    to be env-keyed and its section returned; anything else is returned whole.
    """
    path = find_config_file(base_dir, env, name)
    if not path.is_file():
        return default
    return _select_env(_read_json(path), path, env, required=False)


# --------------------------------------------------------------------------- command line

def parse_server_args(pairs):
    """["id=x", "host=y", "port=3", "frontend=true", ...] -> a server dict (for `zpomelo add`).

    Integers (port, clientPort, cpu, max-connections, clusterCount) become ints unless written
    "<int>++"; true/false become bools for frontend, auto-restart and restart-force. The result
    is only parsed: ServerRecord.from_dict / expand_cluster validate it.
    """
    out = {}
    for pair in pairs:
        if not isinstance(pair, str) or "=" not in pair:
            raise ConfigError("expected key=value, got %r (e.g. port=3150)" % (pair,),
                              server="command line")
        key, value = pair.split("=", 1)
        key, value = key.strip(), value.strip()
        if not key:
            raise ConfigError("empty key in %r; write key=value" % pair, server="command line")
        if key in out:
            raise ConfigError("given twice; give it once", server="command line", field=key)
        if not value:
            raise ConfigError("empty value in %r; write %s=<value>" % (pair, key),
                              server="command line", field=key)
        if key in INT_KEYS and not value.endswith(CLUSTER_SIGNAL):
            if not value.isdigit():
                raise ConfigError("must be a non-negative integer, got %r" % value,
                                  server="command line", field=key)
            value = int(value)
        elif key in BOOL_KEYS:
            if value.lower() not in ("true", "false"):
                raise ConfigError("must be true or false, got %r" % value,
                                  server="command line", field=key)
            value = value.lower() == "true"
        out[key] = value
    return out
