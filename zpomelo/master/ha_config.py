"""The `masterHA` section of config/master.json, and the leader record masters write to ZooKeeper.

Pure: no sockets and no kazoo, so servers, the CLI and the master read it whether or not the
[ha] extra is installed; only ha.py and discovery.py talk to ZooKeeper.

```json
{"development": {"id": "master-server-1", "host": "127.0.0.1", "port": 3005,
  "masterHA": {"zookeeper": "127.0.0.1:2181", "path": "/zpomelo/mygame/development",
               "sessionTimeout": 5,
               "standbys": [{"id": "master-server-2", "host": "127.0.0.1", "port": 3006}]}}}
```
"""
import json
import logging
import os
import re
from dataclasses import dataclass

from zpomelo import config
from zpomelo.config import MasterRecord
from zpomelo.errors import ConfigError

logger = logging.getLogger(__name__)

SECTION = "masterHA"
DEFAULT_SESSION_TIMEOUT = 5.0
MIN_SESSION_TIMEOUT = 1.0
MAX_SESSION_TIMEOUT = 60.0
ELECTION = "election"       # children: the masters' ephemeral sequential candidate nodes
LEADER = "leader"           # data: the leader record (below); never deleted, so epochs only grow

# Leader record states: "running" while a leader serves; "stopped" once `zpomelo stop` ended the
# cluster (standbys then exit instead of taking over, and the next leader starts a fresh cluster).
RUNNING = "running"
STOPPED = "stopped"

_PATH_RE = re.compile(r"^(/[A-Za-z0-9_.\-]+)+$")


@dataclass(frozen=True)
class HAConfig:
    hosts: str                  # ZooKeeper connection string, "host:port,host:port"
    path: str                   # base znode of this cluster
    session_timeout: float      # seconds: how long a silent master keeps its leadership
    standbys: tuple             # MasterRecords of the standby masters `zpomelo masterha` starts

    @property
    def election_path(self):
        return self.path + "/" + ELECTION

    @property
    def leader_path(self):
        return self.path + "/" + LEADER


def load(base_dir, env):
    """The HAConfig of a project's environment, or None when masterHA is not enabled.

    The section comes from config/master.json, else from app.py (``app.set("masterHA", {...})``
    in a configure that applies to the master). A project without config/master.json has no
    master HA either (None)."""
    try:
        master = config.load_master(base_dir, env)
    except ConfigError:
        return None
    if SECTION not in master.extra:
        section = _from_app_py(base_dir, env)
        if section is None:
            return None
        master = MasterRecord(master.id, master.host, master.port,
                              {**master.extra, SECTION: section})
    return from_master(master, base_dir, env)


class _MasterSettingsProbe:
    """What app.py's configure(app) sets when run for the master: every call it makes on the
    app is accepted, only set/enable are kept (the master runs no game code)."""

    server_type = "master"
    is_frontend = False

    def __init__(self, base_dir, env):
        self.base_dir = os.path.abspath(base_dir)
        self.env = env
        self.server_id = "master"
        self.settings = {}

    def set(self, key, value):
        self.settings[key] = value
        return self

    def get(self, key, default=None):
        return self.settings.get(key, default)

    def enable(self, key):
        return self.set(key, True)

    def configure(self, *args):
        from zpomelo.app_api import env_matches, type_matches
        env = args[0] if len(args) > 1 else None
        server_type = args[1] if len(args) > 2 else None
        if env_matches(env, self.env) and type_matches(server_type, self.server_type):
            args[-1]()
        return self

    def __getattr__(self, name):        # route, filter, load, rpc_filter...: nothing to keep
        return lambda *args, **kwargs: self


def _from_app_py(base_dir, env):
    """The masterHA section app.py sets for the master, or None (no app.py, none set, or an
    app.py that fails outside a server: then master.json is the place for it)."""
    if not os.path.isfile(os.path.join(base_dir, "app.py")):
        return None
    from zpomelo import loader
    probe = _MasterSettingsProbe(base_dir, env)
    try:
        module = loader.load_app_module(base_dir)
        if module is not None and hasattr(module, "configure"):
            module.configure(probe)
    except Exception as e:      # user code written for servers: not our business here
        logger.debug("app.py could not be read for masterHA: %s: %s", type(e).__name__, e)
        return None
    return probe.settings.get(SECTION)


def from_master(master, base_dir, env):
    section = master.extra.get(SECTION)
    if section is None:
        return None
    where = config.find_config_file(base_dir, env, config.MASTER_FILE)

    def fail(field, message):
        raise ConfigError(message, path=where, server=master.id, field="%s.%s" % (SECTION, field))

    if not isinstance(section, dict):
        raise ConfigError("must be an object {\"zookeeper\": \"host:port\", \"path\": ..., "
                          "\"sessionTimeout\": ...}, got %r" % (section,), path=where,
                          server=master.id, field=SECTION)
    enabled = section.get("enabled", True)
    if not isinstance(enabled, bool):
        fail("enabled", "must be true or false, got %r" % (enabled,))
    if not enabled:
        return None
    hosts = section.get("zookeeper")
    if not isinstance(hosts, str) or not hosts.strip():
        fail("zookeeper", "missing; give the ZooKeeper servers as \"host:port[,host:port...]\"")
    path = section.get("path")
    if path is None:
        name = re.sub(r"[^A-Za-z0-9_.\-]", "_", os.path.basename(os.path.abspath(base_dir)))
        path = "/zpomelo/%s/%s" % (name or "project", re.sub(r"[^A-Za-z0-9_.\-]", "_", env))
    if not isinstance(path, str) or not _PATH_RE.match(path):
        fail("path", "must be an absolute znode path like \"/zpomelo/mygame\", got %r" % (path,))
    timeout = section.get("sessionTimeout", DEFAULT_SESSION_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not MIN_SESSION_TIMEOUT <= timeout <= MAX_SESSION_TIMEOUT:
        fail("sessionTimeout", "must be a number of seconds between %g and %g, got %r"
             % (MIN_SESSION_TIMEOUT, MAX_SESSION_TIMEOUT, timeout))
    standbys = section.get("standbys", [])
    if not isinstance(standbys, list):
        fail("standbys", "must be a list of {\"id\", \"host\", \"port\"}, got %r" % (standbys,))
    records = []
    seen = {master.id}
    for index, entry in enumerate(standbys):
        field = "standbys[%d]" % index
        if not isinstance(entry, dict):
            fail(field, "must be an object {\"id\", \"host\", \"port\"}, got %r" % (entry,))
        sid = entry.get("id")
        if not isinstance(sid, str) or not sid.strip():
            fail(field + ".id", "missing; give each standby master its own id")
        if sid in seen:
            fail(field + ".id", "id %r is used twice among the masters" % sid)
        seen.add(sid)
        host = entry.get("host")
        if not isinstance(host, str) or not host.strip():
            fail(field + ".host", "missing; give the address this standby binds when it leads")
        port = entry.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            fail(field + ".port", "must be an integer between 0 and 65535, got %r" % (port,))
        records.append(MasterRecord(sid, host.strip(), port))
    return HAConfig(hosts.strip(), path.rstrip("/"), float(timeout), tuple(records))


def master_record(base_dir, env, master_id=None):
    """The MasterRecord of master_id (the primary of master.json, or one of its standbys)."""
    primary = config.load_master(base_dir, env)
    if master_id is None or master_id == primary.id:
        return primary
    cfg = from_master(primary, base_dir, env)
    for record in (cfg.standbys if cfg else ()):
        if record.id == master_id:
            return MasterRecord(record.id, record.host, record.port, primary.extra)
    known = [primary.id] + [r.id for r in (cfg.standbys if cfg else ())]
    raise ConfigError("no master with id %r (masters: %s)" % (master_id, ", ".join(known)),
                      path=config.find_config_file(base_dir, env, config.MASTER_FILE))


# ---------------------------------------------------------------------- the leader record

def encode_leader(record):
    return json.dumps(record, sort_keys=True).encode()


def decode_leader(data):
    """The leader record as a dict, or None for an empty/foreign znode (never raises)."""
    if not data:
        return None
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("epoch"), int) \
            or isinstance(record.get("epoch"), bool):
        return None
    return record


def is_serving(record):
    """A running leader whose port is bound (a leader on port 0 writes its real port next)."""
    return bool(record and record.get("state") == RUNNING and isinstance(record.get("port"), int)
                and record["port"] > 0 and isinstance(record.get("endpoint"), str))
