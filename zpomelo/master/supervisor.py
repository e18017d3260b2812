"""Server processes: spawn (locally or over ssh), watch, and restart with backoff.

Each server runs in its own session with stdout/stderr appended to logs/<id>.log (for a server on
another host: logs/<id>.ssh.log, what its ssh session prints). A spawned child (the server, or
the ssh client running it) is watched by a greenlet blocked in wait(): its exit is a hint that
the server ended. A server the master did not start (adopted after a master restart, or started
by hand with --master) has no child: the master watches it by its heartbeats only. The
supervisor knows processes only: membership is the master's business, told through ``on_exit``;
commands to servers go through the master's control channel (``command``).
"""
import logging
import os
import signal
import time

import gevent
import gevent.event
import gevent.pool

from zpomelo.errors import ZpomeloError
from zpomelo.master import runstate, wire
from zpomelo.master.launcher import (DEFAULT_SERVER_COMMAND, PID_LINE,  # noqa: F401
                                     child_env, read_tail, remote_pid_from)

logger = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 30.0         # a server up this long restarts with the first backoff again
KILL_ANSWER = 2.0           # time for a server to answer the "kill" command
SSH_FAILED = 255            # ssh's own failure, or a remote command killed by a signal

# States shown by `zpomelo list`.
STARTING, RUNNING, STOPPING, STOPPED, DOWN, RESTARTING, UNRESPONSIVE = (
    "starting", "running", "stopping", "stopped", "down", "restarting", "unresponsive")


class ServerProcess:
    """One server of the cluster and its current incarnation (if any)."""

    def __init__(self, record, configured):
        self.record = dict(record)          # as configured / added (ports may be 0)
        self.configured = configured        # in servers.json (else added with `zpomelo add`)
        self.pid = None                     # the server's pid on its host (as it reports it)
        self.child = None                   # our child: the server, or the ssh client running it
        self.remote = False                 # started over ssh
        self.output_log = None              # where the child's output goes
        self.started_at = None              # wall clock, for uptime
        self.state = STOPPED
        self.restarts = 0
        self.explicit_stop = False
        self.exit_reason = None
        self.running = False                # an incarnation was started or adopted
        self.registered = gevent.event.Event()    # set when this incarnation registered
        self.exited = gevent.event.Event()        # set when this incarnation is gone
        self._backoff_step = 0
        self._restart_timer = None

    @property
    def server_id(self):
        return self.record["id"]

    @property
    def alive(self):
        return self.running and not self.exited.is_set()

    @property
    def watched_by_child(self):
        return self.child is not None

    def describe_exit(self, code):
        if code is None:
            return "exited"
        if code < 0:
            try:
                return "killed by %s" % signal.Signals(-code).name
            except ValueError:
                return "killed by signal %d" % -code
        return "exited with code %d" % code

    def _new_incarnation(self, pid, child, started_at):
        self.pid, self.child = pid, child
        self.started_at = started_at or time.time()
        self.state = STARTING
        self.explicit_stop = False
        self.exit_reason = None
        self.running = True
        self.registered = gevent.event.Event()
        self.exited = gevent.event.Event()


class Supervisor:
    """``command(proc, name, timeout)`` sends a command on the server's control channel and
    returns its answer (raises ZpomeloError when there is none); ``probe(proc)`` says whether
    the server still answers."""

    def __init__(self, base_dir, env, master_endpoint, on_exit, on_spawn=None, hosts=None,
                 command=None):
        self.base_dir = str(base_dir)
        self.env = env
        self.master_endpoint = master_endpoint
        self.log_dir = runstate.log_dir(base_dir)
        self.hosts = hosts
        self.procs = {}             # server id -> ServerProcess
        self._on_exit = on_exit     # fn(proc, reason)
        self._on_spawn = on_spawn or (lambda proc: None)
        self._command = command
        self._watchers = gevent.pool.Group()     # watcher and restart greenlets
        self.may_act = lambda: True     # masterHA: False while this master must not act

    # ------------------------------------------------------------------ spawning

    def add(self, record, configured):
        proc = ServerProcess(record, configured)
        self.procs[proc.server_id] = proc
        return proc

    def spawn(self, proc):
        """Start a new incarnation of proc; raises OSError when the process cannot start."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        proc.remote = not self.hosts.is_local(proc.record)
        proc.output_log = self.log_dir / ("%s%s.log" % (proc.server_id,
                                                        ".ssh" if proc.remote else ""))
        popen, pid = self.hosts.spawn(proc.record, proc.configured, self.master_endpoint,
                                      proc.output_log)
        proc._new_incarnation(pid, popen, None)
        logger.info("spawned server %s (%s) %s", proc.server_id, proc.record.get("serverType"),
                    "pid %d" % pid if pid else "on %s over ssh (ssh pid %d)"
                    % (self.hosts.ssh_host(proc.record), popen.pid))
        if not proc.remote:
            self._pin(proc)
        self._watchers.spawn(self._watch_child, proc, popen)
        self._on_spawn(proc)
        return proc

    def adopt(self, proc, pid, started_at=None):
        """Manage a running server that we did not start: watched by its heartbeats."""
        proc._new_incarnation(pid, None, started_at)
        proc.remote = not self.hosts.is_local(proc.record)
        logger.info("adopted running server %s pid %s on %s", proc.server_id, pid,
                    proc.record.get("host"))
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
        if proc.child is not popen:      # an older incarnation, or handed to heartbeats
            return
        # ssh's 255 (its own failure, or the remote killed by a signal) or the ssh client itself
        # killed here: the server may still run over there; ask it before believing it gone
        unsure = code is None or code < 0 or code == SSH_FAILED
        if proc.remote and unsure and not proc.explicit_stop \
                and proc.registered.is_set() and self._answers(proc):
            logger.warning("server %s: its ssh session ended (%s) but the server still "
                           "answers; watching it by its heartbeats", proc.server_id,
                           proc.describe_exit(code))
            proc.child = None
            return
        reason = proc.describe_exit(code)
        if proc.remote:
            reason = ("ssh session ended (exit %d: ssh failed, or the server was killed by a "
                      "signal)" % code) if code == SSH_FAILED else reason
        self.exited(proc, reason)

    def _answers(self, proc):
        try:
            self._command(proc, wire.CMD_INFO, 1.5)
            return True
        except ZpomeloError:
            return False

    def exited(self, proc, reason):
        """This incarnation of proc is gone: record it, tell the master, maybe restart."""
        if proc.exited.is_set():
            return
        proc.exited.set()
        proc.child = None
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
        logger.log(level, "server %s pid %s %s after %.1f s%s", proc.server_id, proc.pid, reason,
                   uptime, " (stopped on request)" if proc.explicit_stop else
                   (", auto-restart on" if restart else ", no auto-restart: it stays down"))
        self._on_exit(proc, reason)
        if restart:
            self._schedule_restart(proc)

    def presumed_dead(self, proc, reason):
        """An adopted server (no child to watch) went silent: make sure it is gone (a frozen
        one would come back beside its replacement), then treat it as exited."""
        self.signal(proc, "KILL")
        self.exited(proc, reason)

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
        if not self.may_act():
            logger.warning("server %s: restart deferred: this master does not lead now",
                           proc.server_id)
            proc._restart_timer = gevent.spawn_later(BACKOFF_FIRST, self._restart, proc)
            self._watchers.add(proc._restart_timer)
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

    def known_pid(self, proc):
        """The server's pid on its host: reported at registration, else (remote, not yet
        registered) printed by its shell into the ssh log."""
        if proc.pid:
            return proc.pid
        if proc.remote and proc.output_log is not None:
            return remote_pid_from(proc.output_log)
        return None

    def signal(self, proc, signame):
        """kill -<signame> on the server's host (guarded against a reused pid)."""
        if not proc.alive or not self.may_act():
            return False
        return self.hosts.signal_server(proc.record, self.known_pid(proc), signame)

    def kill(self, proc, timeout=5.0):
        """The "kill" command on the server's control channel; if the server does not answer
        or survives it, kill -9 on its host. No restart follows."""
        proc.explicit_stop = True
        self.cancel_restart(proc)
        if not proc.alive:
            if proc.state == RESTARTING:
                proc.state = STOPPED
            return True
        answered = False
        if proc.registered.is_set():
            try:
                self._command(proc, wire.CMD_KILL, KILL_ANSWER)
                answered = True
            except ZpomeloError as e:
                logger.info("server %s: %s; killing it on its host", proc.server_id, e)
        if proc.watched_by_child:
            if not (answered and proc.exited.wait(KILL_ANSWER)):
                self.signal(proc, "KILL")
                if not proc.exited.wait(timeout) and proc.child is not None:
                    proc.child.kill()       # the ssh session hangs: end our side of it
                    proc.exited.wait(timeout)
        else:
            self.signal(proc, "KILL")
            self.exited(proc, "killed on request")
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


def log_tail(path, lines=15):
    """The last lines of a log file, for error messages."""
    text = read_tail(path, 8192)
    if text is None:
        return ""
    tail = [line for line in text.splitlines() if not line.startswith(PID_LINE)][-lines:]
    if not tail:
        return "; its log %s is empty" % path
    return "; last lines of %s:\n  %s" % (path, "\n  ".join(tail))
