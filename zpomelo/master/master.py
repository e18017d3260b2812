"""The master process: starts the cluster and answers what arrives on its port.

One ROUTER on the master's port (port.py; wire.py is its format, and every frame is opened with
the cluster secret there). Servers register when ready; the master tells everyone about joins
and leaves, watches heartbeats (members.py), and fires after_start_all once every expected
server is up. Processes are the Supervisor's job; admin verbs are control.py's.
"""
import logging
import os
import time

import gevent
import gevent.event
import zmq

from zpomelo import config
from zpomelo.errors import ZpomeloError
from zpomelo.master import procinfo, runstate, wire
from zpomelo.master.control import AdminControl, select_servers
from zpomelo.master.exporter import MasterExporter
from zpomelo.master.registry import Registry
from zpomelo.master.launcher import HostAccess
from zpomelo.master.members import MemberEvents
from zpomelo.master.port import MasterPort
from zpomelo.master.supervisor import Supervisor
from zpomelo.rpc import security

logger = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT = 5.0     # seconds without a heartbeat before a server counts as gone
ADOPT_GRACE = 3.0           # how long a restarted master waits for running servers to re-register
START_TIMEOUT = 60.0


class Master(MemberEvents):
    def __init__(self, base_dir, env, only_type=None, only_id=None, server_command=None,
                 context=None, record=None, ha=None, takeover=False):
        self.base_dir = os.path.abspath(base_dir)
        self.env = env
        self.record = record or config.load_master(self.base_dir, env)
        self.ha = ha                # masterHA: the elected ha.Candidate that guards every act
        self.takeover = takeover    # a standby taking over a running cluster: spawns nothing
        self.configured = config.load_servers(self.base_dir, env)
        self.admin_users = config.load_admin_users(self.base_dir, env)
        self.heartbeat_timeout = float(self.record.extra.get("heartbeatTimeout",
                                                             HEARTBEAT_TIMEOUT))
        self.selected = set() if takeover else select_servers(self.configured, only_type,
                                                               only_id)
        self.keys = security.load_keys(self.base_dir)
        security.check_production(env, self.keys,
                                  [self.record.host] + [r.host for r in self.configured])
        self.refusals = security.RefusalLog(logger)
        # the one ROUTER socket: sealed frames in and out, answers to commands (port.py)
        self.socket = MasterPort(self.record, self.keys, context or zmq.Context.instance(), ha,
                                 self.refusals)
        self._unregistered = set()              # ids whose own "unregister" set explicit_stop
        self.registry = Registry()
        self.control = AdminControl(self)
        self.ready = gevent.event.Event()       # set when started (or failed: see start_error)
        self.start_error = None
        self.start_elapsed = None
        self.done = gevent.event.Event()        # set when the master should exit
        self._server_command = server_command
        self._settled = False
        self._adopting = set()
        self._all_started = False
        self._greenlets = []
        self._t0 = None
        self.supervisor = None
        self.exporter = MasterExporter(self)    # its /metrics and the Prometheus targets file
        self.console = None         # the web admin console (console_web.py), when configured

    @property
    def epoch(self):
        return self.ha.epoch if self.ha is not None else None

    def acting(self):
        """masterHA: only while this master leads and its ZooKeeper lease holds (ha.py)."""
        return self.ha is None or self.ha.may_act()

    @property
    def port(self):
        """The port bound (master.json's, or any free one for 0); None before start."""
        return self.socket.port

    @property
    def endpoint(self):
        return "tcp://%s:%d" % (self.record.host, self.port)

    # ------------------------------------------------------------------ startup

    def start(self):
        """Bind, adopt what still runs, spawn the rest. Returns at once; see ``ready``."""
        self._t0 = time.monotonic()
        state = runstate.load(self.base_dir, self.env)
        other = state["master"].get("pid")
        if self.ha is not None:     # the election decides; the state file is only for adopting
            other, state["master"] = None, {}
        if other and other != os.getpid() and procinfo.is_alive(other) \
                and "zpomelo" in " ".join(procinfo.cmdline(other)):
            raise ZpomeloError("a master for %s (%s) is already running: pid %d on port %s;"
                               " stop it first (zpomelo stop)"
                               % (self.base_dir, self.env, other, state["master"].get("port")))
        self._bind(state["master"])
        self.exporter.start()
        self._start_console()
        self.hosts = HostAccess(self.base_dir, self.env, self.record, self._server_command)
        self.supervisor = Supervisor(
            self.base_dir, self.env, self.endpoint, self._on_exit, on_spawn=lambda p:
            self.save_state(), hosts=self.hosts,
            command=lambda proc, name, timeout: self.command(proc.server_id, name,
                                                              timeout=timeout))
        self.supervisor.may_act = self.acting
        self._greenlets.append(gevent.spawn(self.socket.read_loop, self._dispatch))
        adopting = self._adopting = self._adopt(state["servers"])
        for record in ([] if self.takeover else self.configured):
            if record.id not in self.supervisor.procs:
                proc = self.supervisor.add(record.to_dict(), configured=True)
                if record.id in self.selected:
                    self._spawn_or_fail(proc)
        self.save_state()
        self._greenlets.append(gevent.spawn(self._heartbeat_check_loop))
        self._greenlets.append(gevent.spawn(self._settle, adopting))
        self._check_all_started()

    def _bind(self, previous):
        self.socket.bind(previous)
        logger.info("master %s (%s) listening on %s:%d (%s), pid %d", self.record.id, self.env,
                    self.record.host, self.port, "CURVE + cluster secret" if self.keys.curve
                    else "cluster secret, no CURVE", os.getpid())

    def _start_console(self):
        from zpomelo.master.console_web import start_console
        try:
            self.console = start_console(self)
        except OSError as e:
            if self.ha is not None:
                # a leader taking over must not fail for its console: a frozen former leader
                # on this host may still hold the port
                logger.error("the admin console cannot listen on %s:%s: %s; running without "
                             "it", self.record.host, self.record.extra.get("adminWebPort"), e)
                return
            self.close()
            raise ZpomeloError("the admin console cannot listen on %s:%s: %s; change "
                               "adminWebPort in config/master.json (or set it to false)"
                               % (self.record.host, self.record.extra.get("adminWebPort"), e)
                               ) from None

    @property
    def console_url(self):
        return self.console.url if self.console is not None else None

    def _adopt(self, saved):
        """Take back the servers of the last run that had a process; returns their ids. Those
        that do not register again within the grace period are presumed gone (see _settle)."""
        adopting = set()
        for sid, entry in saved.items():
            pid = entry.get("pid")
            if not pid or not isinstance(entry.get("record"), dict):
                continue
            proc = self.supervisor.add(entry["record"], bool(entry.get("configured")))
            proc.restarts = int(entry.get("restarts") or 0)
            self.supervisor.adopt(proc, pid, entry.get("started_at"))
            adopting.add(sid)
        if adopting:
            logger.info("adopting %d running servers: %s", len(adopting),
                        ", ".join(sorted(adopting)))
        return adopting

    def _spawn_or_fail(self, proc):
        try:
            self.supervisor.spawn(proc)
        except OSError as e:
            self._fail_start("cannot start server %s: %s" % (proc.server_id, e))

    def _settle(self, adopting):
        """After a restart, wait for adopted servers; then tell everyone the whole membership."""
        deadline = time.monotonic() + max(ADOPT_GRACE, 2 * self.heartbeat_timeout / 3)
        while adopting - set(self.registry.members) and time.monotonic() < deadline:
            gevent.sleep(0.1)
        for sid in adopting - set(self.registry.members):
            proc = self.supervisor.procs.get(sid)
            if proc is None or not proc.alive or proc.watched_by_child:
                continue
            reason = "did not register again after the master restarted"
            if proc.record.get("auto-restart") or proc.record.get("restart-force"):
                self.supervisor.presumed_dead(proc, reason)
            else:
                self.supervisor.exited(proc, reason)
        self._settled = True
        if adopting or self.takeover:
            self.broadcast(wire.SYNC, self.registry.records())
        self._check_all_started()

    def report_start(self, ready, start_timeout, **extra):
        """After waiting up to start_timeout for the cluster: tell ``ready`` how the start went.
        Returns None when the cluster is up, else the exit code (the master is closed)."""
        if not self.ready.is_set() and not self.done.is_set():
            missing = sorted(sid for sid in self.selected if sid not in self.registry)
            self._fail_start("servers %s did not register within %.0f s; see their logs under %s"
                             % (", ".join(missing), start_timeout, runstate.log_dir(self.base_dir)))
        if self.start_error:
            ready({"ok": False, "error": self.start_error})
            self.shutdown(graceful=True, timeout=3.0)
            self.close()
            return 1
        if not self.ready.is_set():
            ready({"ok": False, "error": "the master was stopped before the cluster was ready"})
            self.close()
            return 1
        if self.console is not None:
            extra["adminWeb"] = self.console_url
        ready(dict({"ok": True, "pid": os.getpid(), "port": self.port, "host": self.record.host,
                    "elapsed": self.start_elapsed, "servers": len(self.selected)}, **extra))
        return None

    def _fail_start(self, message):
        if self.ready.is_set():
            return
        logger.error("cluster start failed: %s", message)
        self.start_error = message
        self.ready.set()

    def _check_all_started(self):
        if self._all_started:
            return
        if not all(sid in self.registry for sid in self.selected):
            return
        if not self._settled and any(sid not in self.registry and self.supervisor.procs[sid].alive
                                     for sid in self._adopting):
            return      # adopted servers still coming back (they get a few seconds)
        self._all_started = True
        self.start_elapsed = time.monotonic() - self._t0
        logger.info("all %d servers are up (%.2f s); firing after_start_all",
                    len(self.selected), self.start_elapsed)
        self.ready.set()
        for sid in list(self.registry.members):
            self.command_async(sid, wire.CMD_AFTER_START_ALL)

    # ------------------------------------------------------------------ the socket

    def broadcast(self, *parts, exclude=None):
        for identity in self.registry.identities(exclude):
            self.socket.send(identity, *parts)

    def _dispatch(self, identity, msg, address=None):
        kind = msg[0]
        if self.ha is not None:
            self.ha.saw_newer_epoch(wire.epoch_of(msg), "a server (%r)" % kind)
        if kind == wire.HEARTBEAT:
            if not self.registry.touch(msg[1], identity):
                self.socket.send(identity, wire.REREGISTER)
        elif kind == wire.RESULT:
            self.socket.on_result(msg)
        elif kind == wire.REGISTER:
            self._on_register(identity, msg[1])
        elif kind == wire.UNREGISTER:
            self._on_unregister(msg[1])
        elif kind == wire.ADMIN:
            gevent.spawn(self._on_admin, identity, msg, address)
        else:
            logger.warning("unknown message %r on the master port", kind)

    # ------------------------------------------------------------------ commands to servers

    def command(self, sid, name, args=None, timeout=5.0):
        """Send a command to a registered server and wait for its result."""
        member = self.registry.get(sid)
        if member is None:
            raise ZpomeloError("server %s is not registered" % sid)
        return self.socket.command(member.identity, sid, name, args, timeout)

    def command_async(self, sid, name, args=None):
        member = self.registry.get(sid)
        if member is not None:
            self.socket.command_async(member.identity, name, args)

    # ------------------------------------------------------------------ admin

    def _on_admin(self, identity, msg, address=None):
        if not self.acting():
            self.socket.send(identity, wire.ERROR,
                             "master %s does not lead the cluster now (it lost its ZooKeeper "
                             "lease or stepped down); ask the current leader: zpomelo finds it "
                             "through ZooKeeper without -h/-P" % self.record.id)
            return
        if len(msg) != 5:
            self.socket.send(identity, wire.ERROR, "malformed admin request: expected "
                             "[\"admin\", username, password, verb, args]")
            return
        _, username, password, verb, args = msg
        try:
            user = self.control.authenticate(username, password, address)
            result = self.control.handle(verb, args or {}, user)
        except ZpomeloError as e:
            logger.info("admin %s by %r refused: %s", verb, username, e)
            self.socket.send(identity, wire.ERROR, str(e))
            return
        except Exception as e:
            logger.exception("admin %s failed", verb)
            self.socket.send(identity, wire.ERROR, "internal error in the master: %s: %s"
                             % (type(e).__name__, e))
            return
        self.socket.send(identity, wire.OK, result)
        if self.control.exit_after_reply:
            self._record_stopped()
            runstate.remove(self.base_dir, self.env)
            self.exporter.clear()
            self.done.set()

    # ------------------------------------------------------------------ state and shutdown

    def save_state(self):
        if self.supervisor is None or not self.acting():
            return
        master = {"id": self.record.id, "pid": os.getpid(), "host": self.record.host,
                  "port": self.port, "env": self.env, "adminWeb": self.console_url}
        try:
            runstate.save(self.base_dir, self.env, master, self.supervisor.snapshot())
        except OSError as e:
            logger.warning("cannot write the cluster state: %s", e)

    def shutdown(self, graceful=True, timeout=10.0):
        """Stop every server (gracefully: drain; else SIGKILL), then let the master exit."""
        self.control.stop_servers(list(self.supervisor.procs), graceful, timeout)
        self._record_stopped()
        runstate.remove(self.base_dir, self.env)
        self.exporter.clear()
        self.done.set()

    def _record_stopped(self):
        """masterHA: tell ZooKeeper the cluster is stopped, so the standbys exit too."""
        if self.ha is not None:
            self.ha.record_stopped()

    def close(self):
        if self.console is not None:
            self.console.stop()
            self.console = None
        gevent.killall(self._greenlets)
        self.exporter.close()
        if self.supervisor is not None:
            self.supervisor.close()
        self.socket.close()

