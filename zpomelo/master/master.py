"""The master process: membership, liveness, and the socket servers and the CLI talk to.

One ROUTER on the master's port (see wire.py). Servers register when ready; the master tells
everyone about joins and leaves, watches heartbeats, and fires after_start_all once every expected
server is up. Processes are the Supervisor's job; admin verbs are control.py's.

Every frame on the port is opened with the cluster secret (wire.Sealer) before anything looks at
it; with CURVE keys the socket is also a CURVE server (rpc/security.py). A frame that fails is
logged once per peer address and kind, answered with a fixed error, and changes nothing.
"""
import itertools
import logging
import os
import socket
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
from zpomelo.master.supervisor import RUNNING, UNRESPONSIVE, Supervisor, log_tail
from zpomelo.rpc import security
from zpomelo.rpc.greenzmq import GreenSocket
from zpomelo.rpc.zsock import bound_port

logger = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT = 5.0     # seconds without a heartbeat before a server counts as gone
ADOPT_GRACE = 3.0           # how long a restarted master waits for running servers to re-register
START_TIMEOUT = 60.0
BIND_RETRY = 2.0            # a master restarted at once may find its old port busy for a moment


class Master:
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
        self._sealer = wire.Sealer(security.require_secret(self.keys), wire.FROM_MASTER,
                                   wire.TO_MASTER)
        security.check_production(env, self.keys,
                                  [self.record.host] + [r.host for r in self.configured])
        self.refusals = security.RefusalLog(logger)
        self._unregistered = set()              # ids whose own "unregister" set explicit_stop
        self.registry = Registry()
        self.control = AdminControl(self)
        self.port = None
        self.ready = gevent.event.Event()       # set when started (or failed: see start_error)
        self.start_error = None
        self.start_elapsed = None
        self.done = gevent.event.Event()        # set when the master should exit
        self._context = context or zmq.Context.instance()
        self._socket = None
        self._server_command = server_command
        self._settled = False
        self._adopting = set()
        self._all_started = False
        self._req_ids = itertools.count(1)
        self._pending = {}                      # req id -> AsyncResult
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
        self._greenlets.append(gevent.spawn(self._read_loop))
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
        sock = self._context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        security.secure_server(sock, self.keys)
        port = self.record.port
        if port and _listening(self.record.host, port):
            # a dual-stack wildcard listener would not stop our bind, yet clients would be split
            sock.close()
            raise ZpomeloError(
                "the master cannot use %s:%d: another program is already listening there (is "
                "another cluster running? see zpomelo list -P %d); change the port in "
                "config/master.json" % (self.record.host, port, port))
        if port == 0 and previous.get("host") == self.record.host and previous.get("port"):
            port = int(previous["port"])    # servers of the last run still talk to that port
        try:
            bind_retrying(sock, "tcp://%s:%d" % (self.record.host, port),
                          BIND_RETRY if port != self.record.port else 0)
        except zmq.ZMQError as e:
            if port == self.record.port:
                sock.close()
                raise ZpomeloError(
                    "the master cannot bind %s:%d: %s; is another master running? (zpomelo list"
                    " -P %d), or change the port in config/master.json"
                    % (self.record.host, port, e, port)) from None
            sock.bind("tcp://%s:0" % self.record.host)
        self.port = bound_port(sock)
        self._socket = GreenSocket(sock)
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

    def _read_loop(self):
        while True:
            try:
                parts = self._socket.recv_multipart_frames()
            except zmq.ZMQError:
                return
            if len(parts) != 2:
                continue        # not [identity, frame]: nothing to answer
            identity, frame = parts[0].bytes, parts[1]
            address = frame.get("Peer-Address")
            try:
                msg = self._sealer.open(frame.bytes)
            except wire.Unauthenticated as e:
                self.refusals.refused(address, _claimed_kind(frame.bytes), str(e))
                self._send_raw(identity, wire.pack(wire.ERROR, wire.UNAUTHENTICATED_MESSAGE))
                continue
            if msg is None:
                logger.warning("dropped a malformed message on the master port from %s",
                               address)
                self._send(identity, wire.ERROR, "malformed request: expected a msgpack array")
                continue
            try:
                self._dispatch(identity, msg, address)
            except Exception:
                logger.exception("failed to handle %r", msg[0])

    def _send(self, identity, *parts):
        if self.ha is not None and parts[0] in wire.EPOCH_AT:
            if not self.ha.may_act():
                logger.debug("not acting (no ZooKeeper lease): %r not sent", parts[0])
                return
            parts = wire.with_epoch(parts, self.ha.epoch)
        self._send_raw(identity, self._sealer.seal(*parts))

    def _send_raw(self, identity, frame):
        if self._socket is None:
            return
        try:
            self._socket.try_send_multipart([identity, frame])
        except zmq.ZMQError as e:
            logger.debug("send to %r failed: %s", identity, e)

    def broadcast(self, *parts, exclude=None):
        for identity in self.registry.identities(exclude):
            self._send(identity, *parts)

    def _dispatch(self, identity, msg, address=None):
        kind = msg[0]
        if self.ha is not None:
            self.ha.saw_newer_epoch(wire.epoch_of(msg), "a server (%r)" % kind)
        if kind == wire.HEARTBEAT:
            if not self.registry.touch(msg[1], identity):
                self._send(identity, wire.REREGISTER)
        elif kind == wire.RESULT:
            pending = self._pending.pop(msg[1], None)
            if pending is not None:
                if msg[2]:
                    pending.set(msg[3])
                else:
                    pending.set_exception(ZpomeloError(str(msg[3])))
        elif kind == wire.REGISTER:
            self._on_register(identity, msg[1])
        elif kind == wire.UNREGISTER:
            self._on_unregister(msg[1])
        elif kind == wire.ADMIN:
            gevent.spawn(self._on_admin, identity, msg, address)
        else:
            logger.warning("unknown message %r on the master port", kind)

    # ------------------------------------------------------------------ membership

    def _on_register(self, identity, record):
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            logger.warning("dropped a registration without an id: %r", record)
            return
        sid = record["id"]
        proc = self.supervisor.procs.get(sid)
        pid = record.get("pid")
        if proc is None:        # started by hand, or lost from the state file: manage it too
            proc = self.supervisor.add(record, configured=any(r.id == sid
                                                              for r in self.configured))
        if not proc.alive:
            self.supervisor.adopt(proc, pid, time.time())
        elif pid and proc.pid is None:
            proc.pid = pid      # started over ssh: the server tells its pid on its host
        elif pid and pid != proc.pid:
            logger.warning("server %s registered from pid %s, but pid %s runs it; keeping"
                           " the registration", sid, pid, proc.pid)
        if sid in self._unregistered:
            # it unregistered and came back: auto-restart applies again when it dies later
            self._unregistered.discard(sid)
            proc.explicit_stop = False
        member, changed = self.registry.register(record, identity)
        first = not proc.registered.is_set()
        proc.registered.set()
        proc.state = RUNNING
        self._send(identity, wire.WELCOME, self.registry.records(), self._settled)
        if changed:
            logger.info("server %s (%s) registered: pid %s, %s:%s%s", sid,
                        record.get("serverType"), pid, record.get("host"), record.get("port"),
                        " client port %s" % record["clientPort"] if record.get("clientPort")
                        else "")
            self.broadcast(wire.ADD, member.record, exclude=sid)
            self.save_state()
            self.exporter.refresh()
        if self._all_started and first:
            self.command_async(sid, wire.CMD_AFTER_START_ALL)
        self._check_all_started()

    def _on_unregister(self, sid):
        proc = self.supervisor.procs.get(sid)
        if proc is not None:
            if not proc.explicit_stop:
                self._unregistered.add(sid)
            proc.explicit_stop = True
            if proc.state == RUNNING:
                proc.state = "stopping"
        removed = self.remove_member(sid, "unregistered (graceful stop)")
        if proc is not None and proc.alive and not proc.watched_by_child:
            self.supervisor.exited(proc, "stopped (unregistered)")   # no child exit to wait for
        elif removed:
            self.save_state()

    def remove_member(self, sid, reason):
        if self.registry.remove(sid) is None:
            return False
        logger.info("server %s left the cluster: %s", sid, reason)
        self.broadcast(wire.REMOVE, sid)
        self.exporter.refresh()
        return True

    def _on_exit(self, proc, reason):
        self.remove_member(proc.server_id, reason)
        self._check_all_started()
        if not self.ready.is_set() and proc.server_id in self.selected \
                and not proc.registered.is_set():
            self._fail_start("server %s %s before it was ready%s" % (
                proc.server_id, reason, log_tail(proc.output_log)))
        self.save_state()

    def _heartbeat_check_loop(self):
        paused = False
        while True:
            gevent.sleep(min(1.0, self.heartbeat_timeout / 2))
            if not self.acting():
                paused = True       # judge nobody by heartbeats missed while we could not act
                continue
            if paused:
                paused = False
                for member in self.registry.members.values():
                    member.last_seen = time.monotonic()
                self.broadcast(wire.SYNC, self.registry.records())
            for sid in self.registry.silent_since(self.heartbeat_timeout):
                self._on_silent(sid)

    def _on_silent(self, sid):
        proc = self.supervisor.procs.get(sid)
        self.remove_member(sid, "no heartbeat for %.1f s" % self.heartbeat_timeout)
        if proc is None or not proc.alive:
            return
        restart = proc.record.get("auto-restart") or proc.record.get("restart-force")
        if not proc.watched_by_child and restart:
            # heartbeats are all we know of a server we did not start: silence means gone
            self.supervisor.presumed_dead(proc, "no heartbeat for %.1f s" % self.heartbeat_timeout)
            return
        proc.state = UNRESPONSIVE
        if proc.record.get("restart-force"):
            logger.warning("server %s is unresponsive: restart-force kills it", sid)
            self.supervisor.signal(proc, "KILL")
        self.save_state()

    # ------------------------------------------------------------------ commands to servers

    def command(self, sid, name, args=None, timeout=5.0):
        """Send a command to a registered server and wait for its result."""
        member = self.registry.get(sid)
        if member is None:
            raise ZpomeloError("server %s is not registered" % sid)
        req_id = next(self._req_ids)
        result = gevent.event.AsyncResult()
        self._pending[req_id] = result
        self._send(member.identity, wire.CMD, req_id, name, args)
        try:
            return result.get(timeout=timeout)
        except gevent.Timeout:
            raise ZpomeloError("server %s did not answer %r within %.1f s"
                               % (sid, name, timeout)) from None
        finally:
            self._pending.pop(req_id, None)

    def command_async(self, sid, name, args=None):
        member = self.registry.get(sid)
        if member is not None:
            self._send(member.identity, wire.CMD, 0, name, args)

    # ------------------------------------------------------------------ admin

    def _on_admin(self, identity, msg, address=None):
        if not self.acting():
            self._send(identity, wire.ERROR, "master %s does not lead the cluster now (it lost "
                       "its ZooKeeper lease or stepped down); ask the current leader: zpomelo "
                       "finds it through ZooKeeper without -h/-P" % self.record.id)
            return
        if len(msg) != 5:
            self._send(identity, wire.ERROR, "malformed admin request: expected "
                       "[\"admin\", username, password, verb, args]")
            return
        _, username, password, verb, args = msg
        try:
            user = self.control.authenticate(username, password, address)
            result = self.control.handle(verb, args or {}, user)
        except ZpomeloError as e:
            logger.info("admin %s by %r refused: %s", verb, username, e)
            self._send(identity, wire.ERROR, str(e))
            return
        except Exception as e:
            logger.exception("admin %s failed", verb)
            self._send(identity, wire.ERROR, "internal error in the master: %s: %s"
                       % (type(e).__name__, e))
            return
        self._send(identity, wire.OK, result)
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
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None


def bind_retrying(sock, endpoint, retry_for):
    deadline = time.monotonic() + retry_for
    while True:
        try:
            return sock.bind(endpoint)
        except zmq.ZMQError:
            if time.monotonic() >= deadline:
                raise
            gevent.sleep(0.05)


def _listening(host, port):
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _claimed_kind(frame):
    """What an unauthenticated frame claims to be, for the refusal log (never acted upon)."""
    body = frame[wire.HEADER_SIZE:] if frame.startswith(wire.MAGIC) else frame
    msg = wire.unpack(body)
    kind = msg[0] if msg else None
    known = (wire.REGISTER, wire.UNREGISTER, wire.HEARTBEAT, wire.RESULT, wire.ADMIN)
    return "an unauthenticated %r" % kind if kind in known else "an unauthenticated message"
