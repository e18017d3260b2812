"""Who is in the cluster, as the master sees it: registrations, graceful leaves, process exits
and heartbeat silence, each told to every server (wire.ADD / wire.REMOVE).

A base of ``Master`` (master.py), apart because it is the one place that decides membership;
the Master owns the port, the registry, the supervisor and the start.
"""
import logging
import time

import gevent

from zpomelo.master import wire
from zpomelo.master.supervisor import RUNNING, UNRESPONSIVE, log_tail

logger = logging.getLogger("zpomelo.master.master")     # the master's log, as before the split


class MemberEvents:
    """Needs the Master's registry, supervisor, configured, heartbeat_timeout, selected, ready,
    socket, broadcast, save_state, exporter, command_async, acting and _check_all_started."""

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
        self.socket.send(identity, wire.WELCOME, self.registry.records(), self._settled)
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
        deferred = False
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
            # A master stalled past the timeout (a loaded machine) runs this timer before its
            # reader: heartbeats that came meanwhile may wait unread. Read them first (one round
            # later), rather than remove servers that never went silent.
            if not deferred and self.socket.input_waiting():
                deferred = True
                continue
            deferred = False
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
