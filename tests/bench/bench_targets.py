"""Servers to benchmark, started as real processes and stopped by pid (used by the bench_*.py scripts).

- `ZpomeloApp(app_dir, env, server_ids)`: one `python -m zpomelo.server` process per server
  (static membership from servers.json, no master), started backends first, each waited for
  through its --ready-file.
- `PinusApp()`: the pinus reference app (the directory named by the environment variable
  PINUS_APP, with its node_modules installed), started with its own `pinus start` CLI; every
  process it spawned is found through /proc and stopped by pid.
Both are context managers with `.pids` (the server processes) and `.ports` (client ports). Both
run from a temporary copy of their app whose config names free loopback ports (bound to port 0
and read back), so several benchmarks and test runs can share the machine.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from zpomelo.testing import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH_APP = os.path.join(ROOT, "examples", "bench")
PINUS_APP = os.environ.get("PINUS_APP", "")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_ports(n, host="127.0.0.1"):
    """n distinct free TCP ports (bound to port 0, read back, released)."""
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind((host, 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def with_free_ports(servers, env):
    """The servers.json document with env's ports (and clientPorts) replaced by free ones;
    -> (document, client ports of the frontends in order)."""
    doc = json.loads(json.dumps(servers))
    entries = [entry for kind in doc[env].values() for entry in kind]
    ports = free_ports(2 * len(entries))
    client_ports = []
    for entry in entries:
        entry["port"] = ports.pop()
        if entry.get("frontend"):
            entry["clientPort"] = ports.pop()
            client_ports.append(entry["clientPort"])
    return doc, client_ports


def wait_answering(port, route="chat.chatHandler.echo", timeout=START_TIMEOUT):
    """Until a client's request through the frontend at `port` is answered by a backend (a
    frontend accepts connections before its backends have registered)."""
    from zpomelo.client import Client

    def answered():
        try:
            with Client.connect("127.0.0.1", port, transport="ws", timeout=2) as client:
                reply = client.request(route, {"ping": 1}, timeout=2)
                return reply == {"ping": 1}
        except Exception:
            return False
    wait_until(answered, timeout, interval=0.2, message="a request through port %d answered" % port)


def descendants(pid):
    """Every live descendant pid of `pid`, from /proc (children before grandchildren)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            out.append(child)
            todo.append(child)
    return out


def port_open(port, host="127.0.0.1"):
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def refuse_busy_ports(ports):
    busy = [p for p in ports if port_open(p)]
    if busy:
        raise RuntimeError("ports %s are already in use: stop whatever listens there first" % busy)


class ZpomeloApp:
    def __init__(self, app_dir=BENCH_APP, env="production", server_ids=("chat-server-1", "connector-server-1"),
                 log_level="WARNING", extra_env=None, wait_route="chat.chatHandler.echo",
                 overlay=None):
        self.source_dir = app_dir
        self.overlay = overlay or {}             # {path in the app copy: file copied there}
        self.wait_route = wait_route             # a route answered once the app is up, or None
        self.env = env
        self.server_ids = list(server_ids)       # started in this order: backends first
        self.ports = []
        self.log_level = log_level
        self.extra_env = extra_env or {}
        self.procs = {}
        self.tmp = None

    @property
    def pids(self):
        return [p.pid for p in self.procs.values()]

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="zpomelo-bench-")
        self.app_dir = os.path.join(self.tmp, "app")
        shutil.copytree(self.source_dir, self.app_dir,
                        ignore=shutil.ignore_patterns("__pycache__", "logs"))
        for target, source in self.overlay.items():
            shutil.copy(source, os.path.join(self.app_dir, target))
        servers_json = os.path.join(self.app_dir, "config", "servers.json")
        with open(servers_json) as f:
            doc, self.ports = with_free_ports(json.load(f), self.env)
        with open(servers_json, "w") as f:
            json.dump(doc, f)
        env = dict(os.environ, ZPOMELO_LOG_LEVEL=self.log_level, **self.extra_env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
        try:
            for server_id in self.server_ids:
                ready = os.path.join(self.tmp, server_id + ".json")
                self.procs[server_id] = subprocess.Popen(
                    [sys.executable, "-m", "zpomelo.server", "--dir", self.app_dir, "--env", self.env,
                     "--id", server_id, "--ready-file", ready, "--log-dir", self.tmp], env=env)
                proc = self.procs[server_id]
                wait_until(lambda: os.path.exists(ready) or proc.poll() is not None, START_TIMEOUT,
                           message="%s to start" % server_id)
                if proc.poll() is not None:
                    raise RuntimeError("%s exited with %s; see %s" % (server_id, proc.returncode, self.tmp))
            for port in self.ports:
                wait_until(lambda: port_open(port), START_TIMEOUT, message="client port %d" % port)
            if self.wait_route:
                wait_answering(self.ports[0], self.wait_route)
        except BaseException:
            self.stop()
            raise
        return self

    def records(self):
        out = {}
        for server_id in self.server_ids:
            with open(os.path.join(self.tmp, server_id + ".json")) as f:
                out[server_id] = json.load(f)
        return out

    def stop(self):
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class PinusApp:
    """The pinus reference app: master + connector-server-1 + chat-server-1, as zpomelo's."""

    def __init__(self, app_dir=None, env="production"):
        self.source_dir = app_dir or PINUS_APP
        self.env = env
        self.ports = []
        self.pids = []
        self.cli = None
        self.tmp = None

    def start(self):
        cli = os.path.join(self.source_dir, "node_modules", ".bin", "pinus")
        if not os.path.exists(cli):
            raise RuntimeError("no installed pinus app at %r: set PINUS_APP to a copy of the pinus "
                               "reference app and run `npm install` in it" % self.source_dir)
        self.tmp = tempfile.mkdtemp(prefix="pinus-bench-")
        for name in ("app", "app.js", "config", "package.json"):
            source = os.path.join(self.source_dir, name)
            if os.path.isdir(source):
                shutil.copytree(source, os.path.join(self.tmp, name))
            else:
                shutil.copy(source, self.tmp)
        os.symlink(os.path.join(self.source_dir, "node_modules"), os.path.join(self.tmp, "node_modules"))
        config = os.path.join(self.tmp, "config")
        with open(os.path.join(config, "servers.json")) as f:
            doc, self.ports = with_free_ports(json.load(f), self.env)
        with open(os.path.join(config, "servers.json"), "w") as f:
            json.dump(doc, f)
        with open(os.path.join(config, "master.json")) as f:
            master = json.load(f)
        master[self.env]["port"] = free_ports(1)[0]
        with open(os.path.join(config, "master.json"), "w") as f:
            json.dump(master, f)
        log = open(os.path.join(self.tmp, "console.out"), "wb")
        self.cli = subprocess.Popen([os.path.join(self.tmp, "node_modules", ".bin", "pinus"), "start",
                                     "-e", self.env], cwd=self.tmp, stdout=log, stderr=log)
        log.close()
        try:
            wait_until(lambda: port_open(self.ports[0]) or self.cli.poll() not in (None, 0),
                       START_TIMEOUT, message="pinus to open its client port")
            if not port_open(self.ports[0]):
                raise RuntimeError("pinus did not start; see %s/console.out" % self.tmp)
            self.pids = [pid for pid in descendants(self.cli.pid) if _is_node_server(pid)]
            wait_answering(self.ports[0])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.cli is None:
            return
        # the servers too by their own pids: if the master went first they are no descendants
        pids = sorted(set(descendants(self.cli.pid) + self.pids + [self.cli.pid]))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.1)
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.cli.wait()
        self.cli = None
        self.pids = []
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _is_node_server(pid):
    """A pinus process started with `env=` argv (master or server), not the CLI wrapper."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return any(arg.startswith(b"env=") for arg in argv)
