"""Servers to benchmark, started as real processes and stopped by pid (used by the bench_*.py scripts).

- `ZpomeloApp(app_dir, env, server_ids)`: one `python -m zpomelo.server` process per server
  (static membership from servers.json, no master), started backends first, each waited for
  through its --ready-file.
- `PinusApp()`: the pinus reference app through its run.sh (start, pids, stop); the app lives
  outside this repository, in the directory named by the environment variable PINUS_APP.
Both are context managers with `.pids` (the server processes) and `.ports` (client ports).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile

from zpomelo.testing import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH_APP = os.path.join(ROOT, "examples", "bench")
PINUS_RUN = os.path.join(os.environ.get("PINUS_APP", ""), "run.sh")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


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
                 ports=(3010,), log_level="WARNING", extra_env=None):
        self.app_dir = app_dir
        self.env = env
        self.server_ids = list(server_ids)       # started in this order: backends first
        self.ports = list(ports)
        self.log_level = log_level
        self.extra_env = extra_env or {}
        self.procs = {}
        self.tmp = None

    @property
    def pids(self):
        return [p.pid for p in self.procs.values()]

    def start(self):
        refuse_busy_ports(self.ports)
        self.tmp = tempfile.mkdtemp(prefix="zpomelo-bench-")
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

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class PinusApp:
    ports = [3010]

    def __init__(self, run_sh=PINUS_RUN):
        self.run_sh = run_sh
        self.pids = []

    def start(self):
        if not os.path.isfile(self.run_sh):
            raise RuntimeError("no pinus app at %r: set PINUS_APP to the directory of the pinus "
                               "reference app (the one holding run.sh)" % self.run_sh)
        refuse_busy_ports([3005, 3010, 3150, 6050])
        done = subprocess.run([self.run_sh, "start"], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            self.stop()
            raise RuntimeError("pinus did not start: %s %s" % (done.stdout, done.stderr))
        pids = subprocess.run([self.run_sh, "pids"], capture_output=True, text=True, timeout=30)
        # the servers only: the master idles during the load and would dilute nothing, but keep it
        self.pids = [int(line.split()[0]) for line in pids.stdout.splitlines()
                     if line.strip() and line.split()[1] != "cli"]
        return self

    def stop(self):
        subprocess.run([self.run_sh, "stop"], capture_output=True, text=True, timeout=120)
        self.pids = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
