"""One server's entry of servers.json (or master.json) checked and turned into a record.

The field checks, ``ServerRecord``/``MasterRecord`` and clusterCount expansion: everything that
judges one entry, apart from finding and reading the files (config.py). Every error is a
``ConfigError`` naming the file, the server and the field.
"""

import logging
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from zpomelo.errors import ConfigError

logger = logging.getLogger("zpomelo.config")    # the name its records were always logged under

CLUSTER_COUNT = "clusterCount"
METRICS_PORT = "metricsPort"    # the /metrics endpoint (zpomelo/metrics); 0 = any free port
CLUSTER_SIGNAL = "++"
MAX_PORT = 65535

_SERVER_TYPE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EMPTY = MappingProxyType({})

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
BOOL_KEYS = ("frontend", "auto-restart", "restart-force")
INT_KEYS = ("port", "clientPort", "cpu", "max-connections", CLUSTER_COUNT)


# --------------------------------------------------------------------------- value checks

def fail(message, path, server, key):
    raise ConfigError(message, path=path, server=server, field=key)


def required(d, key, hint, path, server):
    """``d[key]``; a ConfigError "missing; <hint>" when it is absent or null."""
    if d.get(key) is None:
        fail("missing; " + hint, path, server, key)
    return d[key]


def as_int(value, path, server, key, low, high):
    """An int in [low, high]; decimal strings are accepted (Pomelo configs are loose about it)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        fail("must be an integer between %d and %d, got %r" % (low, high, value),
             path, server, key)
    if not low <= value <= high:
        fail("must be between %d and %d, got %d" % (low, high, value), path, server, key)
    return value


def as_bool(value, path, server, key):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    fail("must be true or false, got %r" % (value,), path, server, key)


def as_str(value, path, server, key):
    if not isinstance(value, str) or not value.strip():
        fail("must be a non-empty string, got %r" % (value,), path, server, key)
    return value.strip()


def as_args(value, path, server):
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, (list, tuple)) and all(isinstance(a, str) for a in value):
        return tuple(value)
    fail("must be a string (split on whitespace) or a list of strings, got %r" % (value,),
         path, server, "args")


_SSH_KEYS = {"command": str, "user": str, "identity": str, "port": int, "options": list}
_HOST_STR_KEYS = ("sshHost", "remoteDir", "remotePython", "clientBind")


def check_host_fields(d, path, label):
    """The fields that say how a server's host is reached (master.json and servers.json):
    checked here so a typo fails at load, not as an ssh error at start."""
    for key in _HOST_STR_KEYS:
        if d.get(key) is not None:
            as_str(d[key], path, label, key)
    ssh = d.get("ssh")
    if ssh is not None:
        if not isinstance(ssh, Mapping):
            fail("must be an object with command, user, port, identity, options; got %r"
                 % (ssh,), path, label, "ssh")
        for key, value in ssh.items():
            kind = _SSH_KEYS.get(key)
            if kind is None:
                fail("unknown key %r (known: %s)" % (key, ", ".join(sorted(_SSH_KEYS))),
                     path, label, "ssh")
            if value is None:
                continue
            if kind is int:
                as_int(value, path, label, "ssh.port", 1, MAX_PORT)
            elif kind is list:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    fail("must be a list of strings, got %r" % (value,), path, label,
                         "ssh.options")
            else:
                as_str(value, path, label, "ssh." + key)
    hosts = d.get("localHosts")
    if hosts is not None and (not isinstance(hosts, list)
                              or not all(isinstance(h, str) and h for h in hosts)):
        fail("must be a list of host names or addresses, got %r" % (hosts,), path, label,
             "localHosts")


def check_server_type(value, path, server):
    if not isinstance(value, str) or not _SERVER_TYPE_RE.match(value):
        fail("server type must be an identifier (letters, digits, '_'; not starting with a digit),"
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
    extra: Mapping = field(default_factory=lambda: EMPTY, hash=False)

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
        label = server_label(d, server_type, index)
        if not isinstance(d, Mapping):
            fail("a server must be a JSON object, got %r" % (d,), path, label, None)
        own_type = d.get("serverType")
        if server_type is None:
            if own_type is None:
                fail("missing; say which kind of server this is, e.g. \"serverType\": \"chat\"",
                     path, label, "serverType")
            server_type = own_type
        elif own_type is not None and own_type != server_type:
            fail("is %r but the server is listed under %r; remove it or move the server"
                 % (own_type, server_type), path, label, "serverType")
        check_server_type(server_type, path, label)

        hint = "every server needs a unique id such as \"%s-server-1\"" % server_type
        server_id = as_str(required(d, "id", hint, path, label), path, label, "id")
        label = server_id
        host = as_str(required(d, "host", "give the address to bind, e.g. \"host\": \"127.0.0.1\"",
                               path, label), path, label, "host")
        port = as_int(required(d, "port", "give the RPC port (0 binds any free port)", path, label),
                      path, label, "port", 0, MAX_PORT)

        frontend = as_bool(d.get("frontend", False), path, label, "frontend")
        client_port = d.get("clientPort")
        if client_port is not None:
            client_port = as_int(client_port, path, label, "clientPort", 0, MAX_PORT)
        if frontend and client_port is None:
            fail("missing; a frontend server needs the port clients connect to (0 binds any"
                 " free port), or set \"frontend\": false", path, label, "clientPort")
        if client_port is not None and not frontend:
            logger.debug("%s: backend server %s has a clientPort; it is not used", path, label)
        client_host = d.get("clientHost")
        if client_host is not None:
            client_host = as_str(client_host, path, label, "clientHost")

        cpu = d.get("cpu")
        if cpu is not None:
            cpu = as_int(cpu, path, label, "cpu", 0, 4095)
        max_connections = d.get("max-connections")
        if max_connections is not None:
            max_connections = as_int(max_connections, path, label, "max-connections", 1, 2**31)

        check_host_fields(d, path, label)
        extra = {k: v for k, v in d.items()
                 if k not in _KNOWN_KEYS and k != CLUSTER_COUNT}
        if extra.get(METRICS_PORT) is not None:
            extra[METRICS_PORT] = as_int(extra[METRICS_PORT], path, label, METRICS_PORT, 0, MAX_PORT)
        return cls(
            id=server_id,
            server_type=server_type,
            host=host,
            port=port,
            client_host=client_host,
            client_port=client_port,
            frontend=frontend,
            args=as_args(d.get("args"), path, label),
            cpu=cpu,
            auto_restart=as_bool(d.get("auto-restart", False), path, label, "auto-restart"),
            restart_force=as_bool(d.get("restart-force", False), path, label, "restart-force"),
            max_connections=max_connections,
            extra=MappingProxyType(extra) if extra else EMPTY,
        )


@dataclass(frozen=True)
class MasterRecord:
    """The master's identity and the address its control socket binds."""

    id: str
    host: str
    port: int
    extra: Mapping = field(default_factory=lambda: EMPTY, hash=False)


def server_label(d, server_type, index=None):
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
    label = server_label(d, server_type, index)
    if not isinstance(d, Mapping):
        fail("a server must be a JSON object, got %r" % (d,), path, label, None)
    count = d.get(CLUSTER_COUNT)
    if count is None:
        return [ServerRecord.from_dict(_strip_signals(d, 0, path, label), server_type, path,
                                       index=index)]
    count = as_int(count, path, label, CLUSTER_COUNT, 1, 10000)
    kind = server_type or d.get("serverType")
    check_server_type(kind, path, label)
    base_id = d.get("id")
    if base_id is not None:
        base_id = as_str(base_id, path, label, "id")
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
                fail("%r: only an integer can be followed by \"++\" (e.g. \"3150++\")" % value,
                     path, label, key)
            value = int(base) + offset
        out[key] = value
    return out
