"""A real cluster of server processes, driven through the `zpomelo` command line."""
import json
import os
import shutil
import signal
import sys

from gevent import subprocess   # the CLI runs while the test's clients keep their heartbeats

from zpomelo.config import find_config_file, load_admin_users
from zpomelo.master import procinfo
from zpomelo.testing.waiting import wait_until

EXIT_SECONDS = 15.0   # a stopped server's drain and exit; past it the process is killed
SKIP_ON_COPY = shutil.ignore_patterns("logs", "__pycache__", ".git", ".venv", "node_modules")


def copy_project(project_dir, target, env):
    """Copy the project to ``target`` with the master's and every server's ports of ``env`` set
    to 0 (RPC, client, bus and metrics ports), so a process test needs no free fixed port and writes its
    logs and run state in the copy. Returns ``target``."""
    shutil.copytree(str(project_dir), str(target), ignore=SKIP_ON_COPY)
    _edit_env_section(find_config_file(target, env, "servers.json"), env, _free_server_ports)
    _edit_env_section(find_config_file(target, env, "master.json"), env,
                      _free_master_ports)
    return target


def _edit_env_section(path, env, edit):
    if not path.is_file():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    section = data[env] if isinstance(data, dict) and env in data else data
    edit(section)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _free_master_ports(master):
    master["port"] = 0
    if "metricsPort" in master:
        master["metricsPort"] = 0


def _free_server_ports(servers_by_type):
    for entries in servers_by_type.values():
        for server in entries:
            server["port"] = 0
            for key in ("clientPort", "busPort", "metricsPort"):
                if key in server or (key == "clientPort" and server.get("frontend")):
                    server[key] = 0


class ProcessCluster:
    """A real cluster started by the real command line (``zpomelo start -D``) in ``project_dir``.

    The admin credentials default to the first user of the project's adminUser.json. ``stop()``
    stops it gracefully and then makes sure no server process is left (killed past a deadline).
    """

    def __init__(self, project_dir, env="test", username=None, password=None):
        self.project_dir = str(project_dir)
        self.env = env
        if username is None or password is None:
            users = load_admin_users(self.project_dir, env)
            if not users:
                raise ValueError("%s has no admin user in config/adminUser.json: the cluster could "
                                 "not be listed or stopped" % self.project_dir)
            username = username if username is not None else users[0]["username"]
            password = password if password is not None else users[0]["password"]
        self.auth = ["-u", username, "-p", password]
        self.master = None

    def zpomelo(self, *args, timeout=60, check=True):
        cmd = [sys.executable, "-m", "zpomelo.cli", *args]
        run = subprocess.run(cmd, cwd=self.project_dir, capture_output=True, text=True, timeout=timeout)
        if check and run.returncode != 0:
            raise AssertionError("%s failed (%s): %s%s" % (" ".join(args), run.returncode, run.stdout, run.stderr))
        if "--json" in args and run.returncode == 0:
            return json.loads(run.stdout)
        return run

    def start(self, timeout=60):
        from zpomelo.rpc import security
        if security.load_keys(self.project_dir).secret is None:
            # a copied test project: give it the cluster secret the master requires (no CURVE,
            # unless the project has CURVE keys already: `zpomelo init` makes them)
            self.zpomelo("keys", "--no-curve", "-d", self.project_dir)
        self.master = self.zpomelo("start", "-D", "-e", self.env, "--json", timeout=timeout)
        return self

    def servers(self):
        return {row["id"]: row for row in self.zpomelo("list", "-e", self.env, "--json", *self.auth)}

    def pids(self):
        """The pid of the master and of every server the master knows."""
        try:
            return [row["pid"] for row in self.servers().values() if row.get("pid")]
        except AssertionError:   # the master is gone: nothing to list
            return []

    def stop(self):
        """Graceful stop; then every process seen before it is gone, or killed."""
        pids = self.pids()
        self.zpomelo("stop", "-e", self.env, *self.auth, check=False)
        for pid in pids:
            try:
                wait_until(lambda: not procinfo.is_alive(pid), EXIT_SECONDS,
                           message="pid %s to exit after stop" % pid)
            except AssertionError:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                raise

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
