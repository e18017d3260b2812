"""Helpers for tests that run the real `zpomelo` command line against a project directory."""
import json
import os
import signal
import sys
from pathlib import Path

from gevent import subprocess   # a command blocks only its greenlet: clients and loads go on

from zpomelo.master import procinfo

_SCRIPT = Path(sys.executable).with_name("zpomelo")
ZPOMELO = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "zpomelo.cli"]


def zpomelo(cwd, *args, env=None, timeout=90):
    """Run `zpomelo ARGS` in cwd; returns the CompletedProcess (text output)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(ZPOMELO + [str(a) for a in args], cwd=str(cwd), env=full_env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def ok(cwd, *args, **kw):
    """Run zpomelo and demand exit code 0; returns stdout."""
    result = zpomelo(cwd, *args, **kw)
    assert result.returncode == 0, "zpomelo %s failed (%d):\n%s\n%s" % (
        " ".join(map(str, args)), result.returncode, result.stdout, result.stderr)
    return result.stdout


def list_rows(cwd, *args, **kw):
    """`zpomelo list --json ARGS` as {id: row}."""
    return {row["id"]: row for row in json.loads(ok(cwd, "list", "--json", *args, **kw))}


def use_free_ports(base):
    """Rewrite every port of config/servers.json and master.json to 0 (bind any free port)."""
    conf = Path(base) / "config"
    servers = json.loads((conf / "servers.json").read_text())
    for env_servers in servers.values():
        for entries in env_servers.values():
            for entry in entries:
                entry["port"] = 0
                if "clientPort" in entry:
                    entry["clientPort"] = 0
    (conf / "servers.json").write_text(json.dumps(servers, indent=1))
    master = json.loads((conf / "master.json").read_text())
    for env_master in master.values():
        env_master["port"] = 0
    (conf / "master.json").write_text(json.dumps(master, indent=1))


def project_pids(base):
    """Every live process started for this project (the master and servers carry --dir base)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            args = procinfo.cmdline(int(entry))
            if str(base) in args and procinfo.is_alive(int(entry)):
                out.append(int(entry))
    return out


def kill_project(base):
    for pid in project_pids(base):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def master_pid(base, env="development"):
    state = json.loads((Path(base) / "logs" / (".cluster-%s.json" % env)).read_text())
    return state["master"]["pid"]
