"""Server processes: spawn, watch, signal, and restart with backoff.

Each server runs in its own session (a Ctrl-C in the master's terminal does not reach it) with
stdout/stderr appended to logs/<id>.log. A child is watched by a greenlet blocked in
gevent.subprocess's wait(); a server adopted from an earlier master (not our child) is watched by
polling /proc. The supervisor knows processes only: membership is the master's business, told
through ``on_exit``.
"""
import json
import logging
import os
import signal
import sys
import time

import gevent
import gevent.event
import gevent.pool
from gevent import subprocess

from zpomelo.master import procinfo, runstate

logger = logging.getLogger(__name__)

DEFAULT_SERVER_COMMAND = (sys.executable, "-m", "zpomelo.server")
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 30.0         # a server up this long restarts with the first backoff again
ADOPTED_POLL = 0.25         # seconds between /proc checks of an adopted server

# States shown by `zpomelo list`.
STARTING, RUNNING, STOPPING, STOPPED, DOWN, RESTARTING, UNRESPONSIVE = (
    "starting", "running", "stopping", "stopped", "down", "restarting", "unresponsive")


def child_env():
    """os.environ, with zpomelo importable in children even when it is not installed
    (a source checkout run through bin/zpomelo or tests)."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([root] + paths)
    return env


class ServerProcess:
    """One server of the cluster and its current process (if any)."""

    def __init__(self, record, configured):
        self.record = dict(record)          # as configured / added (ports may be 0)
        self.configured = configured        # in servers.json (else added with `zpomelo add`)
        self.pid = None
        self.popen = None                   # None for an adopted process
        self.started_at = None              # wall clock, for uptime
        self.state = STOPPED
        self.restarts = 0
        self.explicit_stop = False
        self.exit_reason = None
        self.registered = gevent.event.Event()    # set when this incarnation registered
        self.exited = gevent.event.Event()        # set when this incarnation is gone
        self._backoff_step = 0
        self._restart_timer = None

    @property
    def server_id(self):
        return self.record["id"]

    @property
    def alive(self):
        return self.pid is not None and not self.exited.is_set()

    def describe_exit(self, code):
        if code is None:
            return "exited"
        if code < 0:
            try:
                return "killed by %s" % signal.Signals(-code).name
            except ValueError:
                return "killed by signal %d" % -code
        return "exited with code %d" % code


class Supervisor:
    def __init__(self, base_dir, env, master_endpoint, on_exit, server_command=None,
                 on_spawn=None):
        self.base_dir = str(base_dir)
        self.env = env
        self.master_endpoint = master_endpoint
        self.log_dir = runstate.log_dir(base_dir)
        self.server_command = list(server_command or DEFAULT_SERVER_COMMAND)
        self.procs = {}             # server id -> ServerProcess
        self._on_exit = on_exit     # fn(proc, reason)
        self._on_spawn = on_spawn or (lambda proc: None)
        self._watchers = gevent.pool.Group()     # watcher and restart greenlets

    # ------------------------------------------------------------------ spawning

    def command_for(self, proc):
        record = proc.record
        interpreter, rest = self.server_command[0], self.server_command[1:]
        argv = [interpreter, *record.get("args", ()), *rest,
                "--dir", self.base_dir, "--env", self.env, "--id", proc.server_id,
                "--master", self.master_endpoint, "--log-dir", str(self.log_dir)]
        if not proc.configured:
            argv += ["--record", json.dumps(record)]
        return argv

    def add(self, record, configured):
        proc = ServerProcess(record, configured)
        self.procs[proc.server_id] = proc
        return proc

    def spawn(self, proc):
        """Start a new incarnation of proc; raises OSError when the process cannot start."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        argv = self.command_for(proc)
        with open(self.log_dir / ("%s.log" % proc.server_id), "ab") as log:
            popen = subprocess.Popen(argv, cwd=self.base_dir, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, start_new_session=True,
                                     close_fds=True, env=child_env())
        proc.popen, proc.pid = popen, popen.pid
        proc.started_at = time.time()
        proc.state = STARTING
        proc.explicit_stop = False
        proc.exit_reason = None
        proc.registered = gevent.event.Event()
        proc.exited = gevent.event.Event()
        logger.info("spawned server %s (%s) pid %d", proc.server_id,
                    proc.record.get("serverType"), popen.pid)
        logger.debug("server %s command: %s", proc.server_id, argv)
        self._pin(proc)
        self._watchers.spawn(self._watch_child, proc, popen)
        self._on_spawn(proc)
        return proc

    def adopt(self, proc, pid, started_at=None):
        """Watch a running server that an earlier master started."""
        proc.popen, proc.pid = None, pid
        proc.explicit_stop = False
        proc.started_at = started_at or time.time()
        proc.state = STARTING
        proc.registered = gevent.event.Event()
        proc.exited = gevent.event.Event()
        logger.info("adopted running server %s pid %d", proc.server_id, pid)
        self._watchers.spawn(self._watch_adopted, proc, pid)
        return proc

    def _pin(self, proc):
        cpu = proc.record.get("cpu")
        if cpu is None:
            return
        try:
            os.sched_setaffinity(proc.pid, {cpu})
            logger.info("server %s pinned to cpu %d", proc.server_id, cpu)
        except OSError as e:
            logger.warning("server %s: cannot pin to cpu %s (this machine has cpus %s): %s;"
                           " it runs unpinned", proc.server_id, cpu,
                           sorted(os.sched_getaffinity(0)), e)

    # ------------------------------------------------------------------ watching

    def _watch_child(self, proc, popen):
        code = popen.wait()
        self._exited(proc, popen.pid, proc.describe_exit(code))

    def _watch_adopted(self, proc, pid):
        while procinfo.is_alive(pid):
            gevent.sleep(ADOPTED_POLL)
        self._exited(proc, pid, "exited (adopted process; exit code unknown)")

    def _exited(self, proc, pid, reason):
        if proc.pid != pid:      # an older incarnation
            return
        proc.exited.set()
        proc.exit_reason = reason
        uptime = time.time() - (proc.started_at or time.time())
        if uptime >= STABLE_AFTER:
            proc._backoff_step = 0
        restart = (not proc.explicit_stop
                   and (proc.record.get("auto-restart") or proc.record.get("restart-force")))
        if proc.explicit_stop:
            proc.state = STOPPED
        elif restart:
            proc.state = RESTARTING
        else:
            proc.state = DOWN
        level = logging.INFO if proc.explicit_stop else logging.WARNING
        logger.log(level, "server %s pid %d %s after %.1f s%s", proc.server_id, pid, reason,
                   uptime, " (stopped on request)" if proc.explicit_stop else
                   (", auto-restart on" if restart else ", no auto-restart: it stays down"))
        self._on_exit(proc, reason)
        if restart:
            self._schedule_restart(proc)

    def _schedule_restart(self, proc):
        delay = min(BACKOFF_FIRST * (2 ** proc._backoff_step), BACKOFF_MAX)
        proc._backoff_step += 1
        logger.info("restarting server %s in %.1f s", proc.server_id, delay)
        proc._restart_timer = gevent.spawn_later(delay, self._restart, proc)
        self._watchers.add(proc._restart_timer)

    def _restart(self, proc):
        proc._restart_timer = None
        if proc.explicit_stop or proc.alive:
            return
        proc.restarts += 1
        try:
            self.spawn(proc)
            logger.info("server %s restarted (restart #%d)", proc.server_id, proc.restarts)
        except OSError as e:
            logger.error("server %s: restart failed: %s", proc.server_id, e)
            proc.state = RESTARTING
            self._schedule_restart(proc)

    def cancel_restart(self, proc):
        if proc._restart_timer is not None:
            proc._restart_timer.kill()
            proc._restart_timer = None

    # ------------------------------------------------------------------ signals

    def signal(self, proc, signum):
        if not proc.alive:
            return False
        try:
            os.kill(proc.pid, signum)
            return True
        except ProcessLookupError:
            return False

    def kill(self, proc, timeout=5.0):
        """SIGKILL and wait for the exit; no restart follows."""
        proc.explicit_stop = True
        self.cancel_restart(proc)
        if self.signal(proc, signal.SIGKILL):
            proc.exited.wait(timeout)
        if proc.state == RESTARTING:
            proc.state = STOPPED
        return not proc.alive

    def close(self):
        """Stop watching (the processes keep running)."""
        self._watchers.kill()

    def forget(self, proc):
        self.cancel_restart(proc)
        self.procs.pop(proc.server_id, None)

    def snapshot(self):
        """What runstate keeps of each server."""
        return {sid: {"pid": p.pid if p.alive else None, "started_at": p.started_at,
                      "restarts": p.restarts, "configured": p.configured, "record": p.record,
                      "explicit_stop": p.explicit_stop}
                for sid, p in self.procs.items()}


def log_tail(log_dir, server_id, lines=15):
    """The last lines of a server's log, for error messages."""
    path = log_dir / ("%s.log" % server_id)
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 8192))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    tail = text.splitlines()[-lines:]
    if not tail:
        return "; its log %s is empty" % path
    return "; last lines of %s:\n  %s" % (path, "\n  ".join(tail))
