"""The running cluster, written down: logs/.cluster-<env>.json.

The master rewrites it (atomically) on every spawn, exit and registration. A restarted master reads
it to adopt the servers that are still running, and the command line reads it to find the master
(its pid, and its port when master.json says 0).
"""
import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

LOG_DIR = "logs"


def log_dir(base_dir):
    return Path(base_dir) / LOG_DIR


def state_path(base_dir, env):
    return log_dir(base_dir) / (".cluster-%s.json" % env)


def load(base_dir, env):
    """{"master": {...}, "servers": {id: {...}}}; empty parts when there is no usable file."""
    path = state_path(base_dir, env)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"master": {}, "servers": {}}
    except (OSError, ValueError) as e:
        logger.warning("ignoring unreadable cluster state %s: %s", path, e)
        return {"master": {}, "servers": {}}
    if not isinstance(data, dict):
        return {"master": {}, "servers": {}}
    return {"master": data.get("master") or {}, "servers": data.get("servers") or {}}


def save(base_dir, env, master, servers):
    path = state_path(base_dir, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".%d.tmp" % os.getpid())
    tmp.write_text(json.dumps({"master": master, "servers": servers}, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def remove(base_dir, env):
    try:
        state_path(base_dir, env).unlink()
    except FileNotFoundError:
        pass
