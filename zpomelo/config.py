"""Pomelo-style configuration: servers.json, master.json, adminUser.json and friends.

Every file lives under ``<base_dir>/config/``. A file may be keyed by environment
(``{"development": {...}, "production": {...}}``) or live un-keyed in ``config/<env>/``;
``config/<env>/<name>`` wins when it exists. Everything a user can get wrong is reported as one
``ConfigError`` naming the file, the server and the field. config/README.md documents the fields.
"""

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from zpomelo.errors import ConfigError

logger = logging.getLogger(__name__)

CONFIG_DIR = "config"
SERVERS_FILE = "servers.json"
MASTER_FILE = "master.json"
ADMIN_USERS_FILE = "adminUser.json"

CLUSTER_COUNT = "clusterCount"
METRICS_PORT = "metricsPort"    # the /metrics endpoint (zpomelo/metrics); 0 = any free port
CLUSTER_SIGNAL = "++"
MAX_PORT = 65535

_SERVER_TYPE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EMPTY = MappingProxyType({})

# Pomelo's key -> ServerRecord attribute, for the keys ServerRecord knows.
_KNOWN_KEYS = {
    "id": "id",
    "serverType": "server_type",
    "host": "host",
    "port": "port",
    "clientHost": "client_host",
    "clientPort": "client_port",
    "frontend": "frontend",
    "args": "args",
    "cpu": "cpu",
    "auto-restart": "auto_restart",
    "restart-force": "restart_force",
    "max-connections": "max_connections",
}
_BOOL_KEYS = ("frontend", "auto-restart", "restart-force")
_INT_KEYS = ("port", "clientPort", "cpu", "max-connections", CLUSTER_COUNT)


# --------------------------------------------------------------------------- value checks

def _fail(message, path, server, key):
    raise ConfigError(message, path=path, server=server, field=key)


def _as_int(value, path, server, key, low, high):
    """An int in [low, high]; decimal strings are accepted (Pomelo configs are loose about it)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        _fail("must be an integer between %d and %d, got %r" % (low, high, value),
              path, server, key)
    if not low <= value <= high:
        _fail("must be between %d and %d, got %d" % (low, high, value), path, server, key)
    return value


def _as_bool(value, path, server, key):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    _fail("must be true or false, got %r" % (value,), path, server, key)


def _as_str(value, path, server, key):
    if not isinstance(value, str) or not value.strip():
        _fail("must be a non-empty string, got %r" % (value,), path, server, key)
    return value.strip()


def _as_args(value, path, server):
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, (list, tuple)) and all(isinstance(a, str) for a in value):
        return tuple(value)
    _fail("must be a string (split on whitespace) or a list of strings, got %r" % (value,),
          path, server, "args")


_SSH_KEYS = {"command": str, "user": str, "identity": str, "port": int, "options": list}
_HOST_STR_KEYS = ("sshHost", "remoteDir", "remotePython", "clientBind")


def _check_host_fields(d, path, label):
    """The fields that say how a server's host is reached (master.json and servers.json):
    checked here so a typo fails at load, not as an ssh error at start."""
    for key in _HOST_STR_KEYS:
        if d.get(key) is not None:
            _as_str(d[key], path, label, key)
    ssh = d.get("ssh")
    if ssh is not None:
        if not isinstance(ssh, Mapping):
            _fail("must be an object with command, user, port, identity, options; got %r"
                  % (ssh,), path, label, "ssh")
        for key, value in ssh.items():
            kind = _SSH_KEYS.get(key)
            if kind is None:
                _fail("unknown key %r (known: %s)" % (key, ", ".join(sorted(_SSH_KEYS))),
                      path, label, "ssh")
            if value is None:
                continue
            if kind is int:
                _as_int(value, path, label, "ssh.port", 1, MAX_PORT)
            elif kind is list:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    _fail("must be a list of strings, got %r" % (value,), path, label,
                          "ssh.options")
            else:
                _as_str(value, path, label, "ssh." + key)
    hosts = d.get("localHosts")
    if hosts is not None and (not isinstance(hosts, list)
                              or not all(isinstance(h, str) and h for h in hosts)):
        _fail("must be a list of host names or addresses, got %r" % (hosts,), path, label,
              "localHosts")


def _check_server_type(value, path, server):
    if not isinstance(value, str) or not _SERVER_TYPE_RE.match(value):
        _fail("server type must be an identifier (letters, digits, '_'; not starting with a digit),"
              " got %r; it names the directory app/servers/<serverType>" % (value,),
              path, server, "serverType")
    return value


# --------------------------------------------------------------------------- records

@dataclass(frozen=True)
class ServerRecord:
    """One server of the cluster, as configured (or as registered with its bound ports)."""

    id: str
    server_type: str
    host: str
    port: int
    client_host: str | None = None
    client_port: int | None = None
    frontend: bool = False
    args: tuple = ()
    cpu: int | None = None
    auto_restart: bool = False
    restart_force: bool = False
    max_connections: int | None = None
    # Any other keys of the file, read-only. Left out of the hash (a mapping is not hashable).
    extra: Mapping = field(default_factory=lambda: _EMPTY, hash=False)

    def to_dict(self):
        """The record with Pomelo's keys (every known key present, None when unset), plus extra."""
        d = dict(self.extra)
        d.update({
            "id": self.id,
            "serverType": self.server_type,
            "host": self.host,
            "port": self.port,
            "clientHost": self.client_host,
            "clientPort": self.client_port,
            "frontend": self.frontend,
            "args": list(self.args),
            "cpu": self.cpu,
            "auto-restart": self.auto_restart,
            "restart-force": self.restart_force,
            "max-connections": self.max_connections,
        })
        return d

    @classmethod
    def from_dict(cls, d, server_type=None, path=None, *, index=None):
        """Validate one server's dict (Pomelo's keys) and build its record.

        ``server_type`` is the key the record sits under in servers.json; otherwise the dict's
        own ``serverType`` is used. ``clusterCount`` is not handled here (see expand_cluster).
        ``index`` (the entry's position in its list) only names the server in errors.
        """
        label = _server_label(d, server_type, index)
        if not isinstance(d, Mapping):
            _fail("a server must be a JSON object, got %r" % (d,), path, label, None)
        own_type = d.get("serverType")
        if server_type is None:
            if own_type is None:
                _fail("missing; say which kind of server this is, e.g. \"serverType\": \"chat\"",
                      path, label, "serverType")
            server_type = own_type
        elif own_type is not None and own_type != server_type:
            _fail("is %r but the server is listed under %r; remove it or move the server"
                  % (own_type, server_type), path, label, "serverType")
        _check_server_type(server_type, path, label)

        if "id" not in d or d["id"] is None:
            _fail("missing; every server needs a unique id such as \"%s-server-1\"" % server_type,
                  path, label, "id")
        server_id = _as_str(d["id"], path, label, "id")
        label = server_id

        if d.get("host") is None:
            _fail("missing; give the address to bind, e.g. \"host\": \"127.0.0.1\"",
                  path, label, "host")
        host = _as_str(d["host"], path, label, "host")

        if d.get("port") is None:
            _fail("missing; give the RPC port (0 binds any free port)", path, label, "port")
        port = _as_int(d["port"], path, label, "port", 0, MAX_PORT)

        frontend = _as_bool(d.get("frontend", False), path, label, "frontend")
        client_port = d.get("clientPort")
        if client_port is not None:
            client_port = _as_int(client_port, path, label, "clientPort", 0, MAX_PORT)
        if frontend and client_port is None:
            _fail("missing; a frontend server needs the port clients connect to (0 binds any"
                  " free port), or set \"frontend\": false", path, label, "clientPort")
        if client_port is not None and not frontend:
            logger.debug("%s: backend server %s has a clientPort; it is not used", path, label)
        client_host = d.get("clientHost")
        if client_host is not None:
            client_host = _as_str(client_host, path, label, "clientHost")

        cpu = d.get("cpu")
        if cpu is not None:
            cpu = _as_int(cpu, path, label, "cpu", 0, 4095)
        max_connections = d.get("max-connections")
        if max_connections is not None:
            max_connections = _as_int(max_connections, path, label, "max-connections", 1, 2**31)

        _check_host_fields(d, path, label)
        extra = {k: v for k, v in d.items()
                 if k not in _KNOWN_KEYS and k != CLUSTER_COUNT}
        if extra.get(METRICS_PORT) is not None:
            extra[METRICS_PORT] = _as_int(extra[METRICS_PORT], path, label, METRICS_PORT, 0, MAX_PORT)
        return cls(
            id=server_id,
            server_type=server_type,
            host=host,
            port=port,
            client_host=client_host,
            client_port=client_port,
            frontend=frontend,
            args=_as_args(d.get("args"), path, label),
            cpu=cpu,
            auto_restart=_as_bool(d.get("auto-restart", False), path, label, "auto-restart"),
            restart_force=_as_bool(d.get("restart-force", False), path, label, "restart-force"),
            max_connections=max_connections,
            extra=MappingProxyType(extra) if extra else _EMPTY,
        )


@dataclass(frozen=True)
class MasterRecord:
    """The master's identity and the address its control socket binds."""

    id: str
    host: str
    port: int
    extra: Mapping = field(default_factory=lambda: _EMPTY, hash=False)


def _server_label(d, server_type, index=None):
    """How an error names a server: its id when it has one, else its index and type."""
    if isinstance(d, Mapping) and isinstance(d.get("id"), str) and d["id"].strip():
        return d["id"].strip()
    kind = server_type or (d.get("serverType") if isinstance(d, Mapping) else None) or "?"
    return "#%s of type %s" % (index, kind) if index is not None else "(no id) of type %s" % kind


# --------------------------------------------------------------------------- clusterCount

def expand_cluster(d, server_type=None, path=None, seq=None, *, index=None):
    """One servers.json entry -> its ServerRecords (several when it has clusterCount).

    With ``"clusterCount": N`` the entry becomes N servers. Their ids are ``<id>-<k>`` (k = 1..N)
    when the entry has an id, else ``<serverType>-<k>`` where k continues across the entries of
    that type (``seq``, a dict type -> last k used, carries it). Any value written ``"<int>++"`` (port,
    clientPort, ...) grows by one per server; other values are copied as they are.
    """
    label = _server_label(d, server_type, index)
    if not isinstance(d, Mapping):
        _fail("a server must be a JSON object, got %r" % (d,), path, label, None)
    count = d.get(CLUSTER_COUNT)
    if count is None:
        return [ServerRecord.from_dict(_strip_signals(d, 0, path, label), server_type, path,
                                       index=index)]
    count = _as_int(count, path, label, CLUSTER_COUNT, 1, 10000)
    kind = server_type or d.get("serverType")
    _check_server_type(kind, path, label)
    base_id = d.get("id")
    if base_id is not None:
        base_id = _as_str(base_id, path, label, "id")
        first = 1
    else:
        seq = {} if seq is None else seq
        first = seq.get(kind, 0) + 1
        seq[kind] = first + count - 1
    records = []
    for k in range(count):
        one = _strip_signals(d, k, path, label)
        one["id"] = "%s-%d" % (base_id or kind, first + k)
        records.append(ServerRecord.from_dict(one, server_type, path))
    return records


def _strip_signals(d, offset, path, label):
    """A copy of d without clusterCount, with every "<int>++" value replaced by int + offset."""
    out = {}
    for key, value in d.items():
        if key == CLUSTER_COUNT:
            continue
        if isinstance(value, str) and value.endswith(CLUSTER_SIGNAL):
            base = value[: -len(CLUSTER_SIGNAL)].strip()
            if not base.isdigit():
                _fail("%r: only an integer can be followed by \"++\" (e.g. \"3150++\")" % value,
                      path, label, key)
            value = int(base) + offset
        out[key] = value
    return out


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
                              server=_server_label(None, server_type, 0), field="serverType")
        first = entries[0] if entries else None
        _check_server_type(server_type, path, _server_label(first, server_type, 0))
        for index, entry in enumerate(entries):
            place = "%s[%d]" % (server_type, index)
            if not isinstance(entry, Mapping):
                _fail("a server must be a JSON object, got %r" % (entry,), path,
                      _server_label(entry, server_type, index), None)
            for record in expand_cluster(entry, server_type, path, seq, index=index):
                _check_unique(record, place, where, bound, path)
                records.append(record)
    logger.debug("%s: %d servers for environment %s", path, len(records), env)
    return records


def _check_unique(record, place, where, bound, path):
    if record.id in where:
        _fail("duplicate id: first at %s, again at %s (serverType[index] in the file); give each"
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
            _fail("%s:%d is already used by %s; give each server its own port (or 0)"
                  % (record.host, port, bound[addr]), path, record.id, key)
        bound[addr] = owner


def load_master(base_dir, env):
    path, section = _load_env_section(base_dir, env, MASTER_FILE)
    if not isinstance(section, dict):
        raise ConfigError("the master of environment %r must be a JSON object "
                          "{\"id\", \"host\", \"port\"}" % str(env), path=path)
    label = section.get("id") if isinstance(section.get("id"), str) else "master"
    master_id = _as_str(section.get("id", "master-server-1"), path, label, "id")
    if section.get("host") is None:
        _fail("missing; give the address the master binds, e.g. \"127.0.0.1\"",
              path, master_id, "host")
    host = _as_str(section["host"], path, master_id, "host")
    if section.get("port") is None:
        _fail("missing; give the master's port, e.g. 3005", path, master_id, "port")
    port = _as_int(section["port"], path, master_id, "port", 0, MAX_PORT)
    _check_host_fields(section, path, master_id)
    web_port = section.get("adminWebPort")
    if web_port is not None and web_port is not False:
        _as_int(web_port, path, master_id, "adminWebPort", 0, MAX_PORT)
    extra = {k: v for k, v in section.items() if k not in ("id", "host", "port")}
    if extra.get(METRICS_PORT) is not None:
        extra[METRICS_PORT] = _as_int(extra[METRICS_PORT], path, master_id, METRICS_PORT, 0, MAX_PORT)
    if extra.get("metricsSdFile") is not None:
        _as_str(extra["metricsSdFile"], path, master_id, "metricsSdFile")
    return MasterRecord(master_id, host, port, MappingProxyType(extra) if extra else _EMPTY)


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
            _fail("must be a JSON object, got %r" % (user,), path, label, None)
        for key in ("username", "password"):
            if not isinstance(user.get(key), str) or not user[key]:
                _fail("missing or not a non-empty string", path, label, key)
        label = user["username"]
        if label in seen:
            _fail("duplicate username: users #%d and #%d" % (seen[label], index),
                  path, label, "username")
        seen[label] = index
        if user["password"].startswith("pbkdf2_sha256$"):
            from zpomelo.master.admin_users import check_hash_format
            problem = check_hash_format(user["password"])
            if problem:
                _fail(problem, path, label, "password")
        user = dict(user)
        user["id"] = str(user.get("id", "user-%d" % (index + 1)))
        user["level"] = _as_int(user.get("level", 1), path, label, "level", 0, 2**31)
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
        if key in _INT_KEYS and not value.endswith(CLUSTER_SIGNAL):
            if not value.isdigit():
                raise ConfigError("must be a non-negative integer, got %r" % value,
                                  server="command line", field=key)
            value = int(value)
        elif key in _BOOL_KEYS:
            if value.lower() not in ("true", "false"):
                raise ConfigError("must be true or false, got %r" % value,
                                  server="command line", field=key)
            value = value.lower() == "true"
        out[key] = value
    return out
