"""Admin verbs of the master (what `zpomelo list/add/stop/kill/restart/start/reload` ask for).

Every request is authenticated against config/adminUser.json first (its frame was already
opened with the cluster secret by the master); failed logins are throttled per peer address. A verb either does all of its
work or refuses with a ZpomeloError whose message says what to do; a refusal leaves the running
cluster untouched.
"""
import logging
import os
import re
import socket
import time

import gevent

from zpomelo import config
from zpomelo.errors import ZpomeloError
from zpomelo.master import admin_users, procinfo, wire
from zpomelo.master.throttle import LoginThrottle
from zpomelo.master.supervisor import RESTARTING, STOPPED, STOPPING, log_tail

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0         # graceful stop: time to drain before SIGKILL
READY_TIMEOUT = 30.0        # add/start/restart: time for a new process to register
INFO_TIMEOUT = 2.0
WATCH_VERBS = ("status", "list")   # what a level-0 (watch-only) admin user may ask


class AdminControl:
    def __init__(self, master):
        self.master = master
        self.exit_after_reply = False
        self._cpu = procinfo.CpuSampler()
        self.throttle = LoginThrottle()

    # ------------------------------------------------------------------ auth

    def authenticate(self, username, password, address=None, hint="pass them with -u and -p"):
        """The adminUser.json user, or a ZpomeloError; failures are throttled per address."""
        wait = self.throttle.wait_left(address)
        if wait > 0:
            self.master.refusals.refused(address, "an admin login (locked out)",
                                         "too many failed logins")
            raise ZpomeloError("too many failed admin logins from %s: try again in %.1f s"
                               % (address, wait))
        users = self.master.admin_users
        if not users:
            raise ZpomeloError("the master accepts no admin user: config/adminUser.json is "
                               "missing or empty; add {\"username\": ..., \"password\": ...} "
                               "there and restart the master")
        user = admin_users.find_user(users, username, password)
        if user is not None:
            self.throttle.succeeded(address)
            return user
        delay = self.throttle.failed(address)
        self.master.refusals.refused(address, "an admin login", "wrong username or password "
                                     "for user %r" % (username,))
        if delay:
            logger.warning("admin logins from %s locked out for %.1f s after repeated failures",
                           address, delay)
        raise ZpomeloError("authentication failed for user %r: wrong username or password "
                           "(admin users are listed in config/adminUser.json; %s)"
                           % (username, hint))

    def handle(self, verb, args, user=None):
        """Run an admin verb for ``user`` (its level decides: watch-only users may only ask
        status and list)."""
        if user is not None and verb not in WATCH_VERBS and not admin_users.may_act(user):
            raise ZpomeloError("user %r has level %s: it may watch (status, list) but not %s; "
                               "give it level %d in config/adminUser.json to act"
                               % (user["username"], user.get("level"), verb,
                                  admin_users.OPERATOR_LEVEL))
        method = getattr(self, "verb_" + str(verb), None) if isinstance(verb, str) else None
        if method is None:
            raise ZpomeloError("unknown admin verb %r (known: %s)"
                               % (verb, ", ".join(sorted(n[5:] for n in dir(self)
                                                         if n.startswith("verb_")))))
        if not isinstance(args, dict):
            raise ZpomeloError("admin arguments must be a map, got %r" % (args,))
        return method(args)

    # ------------------------------------------------------------------ verbs

    def verb_status(self, args):
        m = self.master
        return {"id": m.record.id, "pid": os.getpid(), "host": m.record.host, "port": m.port,
                "env": m.env, "base_dir": m.base_dir, "ready": m.ready.is_set(),
                "start_error": m.start_error, "start_elapsed": m.start_elapsed,
                "registered": len(m.registry), "expected": len(m.selected),
                "metricsPort": m.exporter.port, "metricsTargets": str(m.exporter.sd_path),
                "adminWeb": m.console_url}

    def verb_list(self, args):
        m = self.master
        procs = sorted(m.supervisor.procs.values(),
                       key=lambda p: (p.record.get("serverType", ""), p.server_id))
        infos = {}
        jobs = [gevent.spawn(self._info, p.server_id, infos) for p in procs
                if p.server_id in m.registry]
        gevent.joinall(jobs, timeout=INFO_TIMEOUT + 1)
        rows = [self._master_row()] + self._standby_rows()
        for p in procs:
            member = m.registry.get(p.server_id)
            record = member.record if member else p.record
            alive = p.alive
            # what the server says of itself, measured on its own host
            info = infos.get(p.server_id) or {}
            pid = info.get("pid") or (p.pid if alive else None)
            rows.append({
                "id": p.server_id, "serverType": record.get("serverType"),
                "pid": pid if alive else None, "host": record.get("host"),
                "port": record.get("port"), "clientPort": record.get("clientPort"),
                "metricsPort": record.get("metricsPort"),
                "frontend": bool(record.get("frontend")), "state": p.state,
                "uptime": round(time.time() - p.started_at, 1) if alive and p.started_at
                else None,
                "rss": info.get("rss") if alive else None,
                "cpu": self._cpu.percent((p.server_id, pid), info.get("cpuSeconds"),
                                         p.started_at) if alive else None,
                "connections": info.get("connections"), "badInput": info.get("badInput"),
                "gcFrozen": info.get("gcFrozen"), "restarts": p.restarts,
                "configured": p.configured, "remote": p.remote})
        return rows

    def verb_add(self, args):
        servers = args.get("servers")
        if not isinstance(servers, list) or not servers:
            raise ZpomeloError("add needs at least one server, e.g. zpomelo add id=chat-server-3"
                               " host=127.0.0.1 port=6052 serverType=chat")
        records = self._check_new_servers(servers)
        procs = [self.master.supervisor.add(r.to_dict(), configured=False) for r in records]
        return self._launch(procs, "add", forget_on_failure=True)

    def verb_start(self, args):
        m = self.master
        ids = select_servers(m.configured, args.get("type"), args.get("id"))
        procs = []
        for record in m.configured:
            if record.id not in ids:
                continue
            proc = m.supervisor.procs.get(record.id) or m.supervisor.add(record.to_dict(), True)
            if not proc.alive:
                procs.append(proc)
        if not procs:
            raise ZpomeloError("already running: %s" % ", ".join(sorted(ids)))
        return self._launch(procs, "start", forget_on_failure=False)

    def verb_restart(self, args):
        m = self.master
        procs = self._select(args.get("type"), args.get("id"))
        for proc in procs:      # one by one, so the other servers of a type keep serving
            self._stop_one(proc, graceful=True, timeout=STOP_TIMEOUT)
            proc.restarts += 1
            self._launch([proc], "restart", forget_on_failure=False)
        m.save_state()
        return [m.registry.get(p.server_id).record for p in procs]

    def verb_reload(self, args):
        from zpomelo.reload import reload_servers    # the verb lives with its CLI and server halves
        return reload_servers(self, args)

    def verb_stop(self, args):
        return self._stop_verb(args, graceful=True)

    def verb_kill(self, args):
        return self._stop_verb(args, graceful=False)

    # ------------------------------------------------------------------ helpers

    def _stop_verb(self, args, graceful):
        m = self.master
        ids = args.get("ids") or []
        if ids:
            procs = [self._proc(sid) for sid in ids]
            self.stop_servers([p.server_id for p in procs], graceful,
                              float(args.get("timeout", STOP_TIMEOUT)))
            m.save_state()
            return {"stopped": [p.server_id for p in procs], "master": None}
        stopped = list(m.supervisor.procs)
        self.stop_servers(stopped, graceful, float(args.get("timeout", STOP_TIMEOUT)))
        self.exit_after_reply = True
        logger.info("every server is stopped; the master exits (%s)",
                    "stop" if graceful else "kill")
        return {"stopped": stopped, "master": os.getpid()}

    def _proc(self, sid):
        proc = self.master.supervisor.procs.get(sid)
        if proc is None:
            known = ", ".join(sorted(self.master.supervisor.procs)) or "none"
            raise ZpomeloError("no server with id %r in this cluster (servers: %s); see "
                               "zpomelo list" % (sid, known))
        return proc

    def _select(self, server_type, server_id):
        procs = list(self.master.supervisor.procs.values())
        if server_id is not None:
            procs = [self._proc(server_id)]
        if server_type is not None:
            procs = [p for p in procs if p.record.get("serverType") == server_type]
            if not procs:
                raise ZpomeloError("no server of type %r in this cluster; see zpomelo list"
                                   % server_type)
        return sorted(procs, key=lambda p: p.server_id)

    def stop_servers(self, ids, graceful, timeout):
        """Frontends first (no new client traffic), then backends; each group in parallel."""
        procs = [self.master.supervisor.procs[sid] for sid in ids
                 if sid in self.master.supervisor.procs]
        for group in ([p for p in procs if p.record.get("frontend")],
                      [p for p in procs if not p.record.get("frontend")]):
            gevent.joinall([gevent.spawn(self._stop_one, p, graceful, timeout) for p in group])

    def _stop_one(self, proc, graceful, timeout):
        m = self.master
        sup = m.supervisor
        proc.explicit_stop = True
        m._unregistered.discard(proc.server_id)
        sup.cancel_restart(proc)
        if not proc.alive:
            if proc.state == RESTARTING:
                proc.state = STOPPED
            m.remove_member(proc.server_id, "stopped")
            return
        proc.state = STOPPING
        logger.info("%s server %s pid %s on %s", "stopping" if graceful else "killing",
                    proc.server_id, proc.pid, proc.record.get("host"))
        if graceful:
            if proc.server_id in m.registry:
                m.command_async(proc.server_id, wire.CMD_STOP)
            elif not sup.signal(proc, "TERM") and not proc.watched_by_child:
                # not registered, no child, and nothing of it on its host (or no way there)
                sup.exited(proc, "gone: nothing to stop on %s" % proc.record.get("host"))
            if proc.exited.wait(timeout):
                return
            logger.warning("server %s did not stop within %.1f s: SIGKILL", proc.server_id,
                           timeout)
        sup.kill(proc)

    def _launch(self, procs, verb, forget_on_failure):
        """Spawn procs and wait until each registers; raise naming those that did not."""
        m = self.master
        failures = []
        started = []
        for proc in procs:
            try:
                m.supervisor.spawn(proc)
                started.append(proc)
            except OSError as e:
                failures.append("%s: cannot start: %s" % (proc.server_id, e))
        deadline = time.monotonic() + READY_TIMEOUT
        for proc in started:
            gevent.wait([proc.registered, proc.exited], count=1,
                                 timeout=max(0.0, deadline - time.monotonic()))
            if proc.registered.is_set():
                continue
            why = proc.exit_reason if proc.exited.is_set() else \
                "did not register within %.0f s" % READY_TIMEOUT
            failures.append("%s %s%s" % (proc.server_id, why, log_tail(proc.output_log)))
            if not proc.exited.is_set():
                m.supervisor.kill(proc)
        if failures:
            for proc in procs:
                if forget_on_failure and not proc.registered.is_set():
                    m.supervisor.forget(proc)
            m.save_state()
            raise ZpomeloError("%s failed: %s" % (verb, "\n".join(failures)))
        m.save_state()
        return [m.registry.get(p.server_id).record for p in procs]

    def _check_new_servers(self, servers):
        """Validate `zpomelo add` input: well-formed, unique ids, ports not in use."""
        m = self.master
        seq = _cluster_seq(list(m.supervisor.procs) + [r.id for r in m.configured])
        records = []
        for d in servers:
            if not isinstance(d, dict):
                raise ZpomeloError("each server to add must be a map of key=value, got %r" % d)
            records.extend(config.expand_cluster(d, None, "zpomelo add", seq))
        taken_ids = set(m.supervisor.procs) | {r.id for r in m.configured}
        taken = self._taken_addresses()
        seen = set()
        for r in records:
            if r.id in taken_ids or r.id in seen:
                raise ZpomeloError("server id %r is already in use in this cluster; choose "
                                   "another id (see zpomelo list)" % r.id)
            seen.add(r.id)
            for key, port in (("port", r.port), ("clientPort", r.client_port)):
                if not port:
                    continue
                address = (r.host.lower(), port)
                if address in taken:
                    raise ZpomeloError("%s %d of server %r is already used by %s (on %s); "
                                       "choose a free port (or 0)" % (key, port, r.id,
                                                                      taken[address], r.host))
                taken[address] = "server %s %s (being added)" % (r.id, key)
                # a remote host checks its own ports: its server reports a failed bind
                bind = r.host if key == "port" else (r.extra.get("clientBind") or "0.0.0.0")
                if m.hosts.is_local(r.to_dict()) and not _port_free(bind, port):
                    raise ZpomeloError("%s %d of server %r is in use on %s by another program;"
                                       " choose a free port (or 0)" % (key, port, r.id, bind))
        return records

    def _taken_addresses(self):
        """(host, port) -> who uses it, over every server the master knows and itself."""
        m = self.master
        taken = {}
        for sid, p in m.supervisor.procs.items():
            for key in ("port", "clientPort"):
                if p.record.get(key):
                    taken[(str(p.record.get("host", "")).lower(), p.record[key])] = \
                        "server %s %s" % (sid, key)
        taken.update(m.registry.taken_addresses())
        for r in m.configured:
            for key, port in (("port", r.port), ("clientPort", r.client_port)):
                if port:
                    taken.setdefault((r.host.lower(), port), "server %s %s" % (r.id, key))
        taken[(m.record.host.lower(), m.port)] = "the master"
        return taken

    def _info(self, sid, out):
        try:
            info = self.master.command(sid, wire.CMD_INFO, timeout=INFO_TIMEOUT)
            out[sid] = info if isinstance(info, dict) else {}
        except ZpomeloError as e:
            logger.debug("info from %s: %s", sid, e)

    def _master_row(self):
        m = self.master
        pid = os.getpid()
        return {"id": m.record.id, "serverType": "master", "pid": pid, "host": m.record.host,
                "port": m.port, "clientPort": None, "metricsPort": m.exporter.port,
                "frontend": False,
                "state": "leading (epoch %d)" % m.epoch if m.ha is not None else "running",
                "uptime": round(time.monotonic() - m._t0, 1), "rss": procinfo.rss_bytes(pid),
                "cpu": self._cpu.percent(("master", pid), procinfo.cpu_seconds(pid), None), "connections": None, "restarts": 0,
                "configured": True}


    def _standby_rows(self):
        """masterHA: the other masters waiting in the election (what ZooKeeper knows of them)."""
        m = self.master
        if m.ha is None:
            return []
        return [{"id": c.get("id"), "serverType": "master", "pid": c.get("pid"),
                 "host": c.get("host"), "port": None, "clientPort": None, "frontend": False,
                 "state": "standby", "uptime": None, "rss": None, "cpu": None,
                 "connections": None, "restarts": 0, "configured": True}
                for c in m.ha.contenders() if c.get("id") != m.record.id]


def select_servers(records, only_type=None, only_id=None):
    """The ids of the configured servers to run (all, or one type, or one id)."""
    chosen = [r.id for r in records
              if (only_type is None or r.server_type == only_type)
              and (only_id is None or r.id == only_id)]
    if not chosen and (only_type is not None or only_id is not None):
        what = "type %r" % only_type if only_type else "id %r" % only_id
        known = sorted({r.server_type for r in records}) if only_type else [r.id for r in records]
        raise ZpomeloError("no configured server has %s (configured: %s); see "
                           "config/servers.json" % (what, ", ".join(known) or "none"))
    return set(chosen)


def _cluster_seq(ids):
    """serverType -> highest k among ids "<serverType>-<k>", so new cluster ids do not collide."""
    seq = {}
    for sid in ids:
        match = re.match(r"^(.*)-(\d+)$", sid)
        if match:
            kind, k = match.group(1), int(match.group(2))
            seq[kind] = max(seq.get(kind, 0), k)
    return seq


def _port_free(host, port):
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # TIME_WAIT is not "in use"
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False
