"""Players, not connections: push to a uid from any server, one session per uid, the directory.

Three roles, all over RPC (``_sys``), never over the push bus (PUB/SUB drops messages for slow
joiners; the directory must not depend on one broadcast arriving):

- **holder** (every frontend): the sessions it holds are the truth. Binding a uid is a *claim*
  sent to the uid's owner (it blocks the binding greenlet for one round trip); unbind and close
  send a *release*; after every change of the frontends' membership, and every
  ``uidDirectoryResync`` seconds, it sends each owner a *full sync* of the entries that owner owns.
- **owner** (every frontend): keeps the ``DirectoryShard`` of the uids that hash to it
  (``uid_directory.owner_of``). Claims for one uid meet here, one after another, so two logins
  racing on two frontends are ordered: the later claim displaces the older session, which the
  owner kicks. A frontend that leaves the membership has its entries dropped at once.
- **caller** (any server): ``lookup`` asks the owners (one call per owner, in parallel) and pushes
  over the bus to the frontends found; ``push_to_uids`` returns the uids it could not reach.

See INTERNALS.md "Players: the uid directory" for the reasons and the measured cost.
"""
import logging

import gevent
from gevent.event import AsyncResult

from zpomelo.errors import ZpomeloError
from zpomelo.uid_directory import DirectoryShard, group_by_owner, owner_of

logger = logging.getLogger(__name__)

KICK_REASON = "another login with the same uid"


class Players:
    def __init__(self, app):
        self._app = app
        self.shard = DirectoryShard()   # the share this frontend owns (empty on backends)
        self._pending = {}              # (uid, sid) -> None: claims sent, not answered yet
        self._view = ()                 # the frontend ids the last sync and shard trim used
        self._scheduled = None
        self._force = False             # sync even if the view is the same (a frontend restarted)
        self._resync = None
        self._batches = {}              # owner id -> ({uid: None}, AsyncResult): lookups to join
        self.stats = {"lookups": 0, "pushes": 0, "offline": 0, "unreachable": 0, "syncs_sent": 0,
                      "sync_failures": 0, "scatters": 0, "lookup_calls": 0}

    def view(self):
        """The live frontends' ids, sorted: every server derives owners from the same list."""
        return tuple(sorted(r.id for r in self._app.membership.frontends()))

    # -- caller side (any server) ---------------------------------------------------------------
    def lookup(self, uids):
        """{uid: [[frontend id, sid], ...]} for the uids online, and the uids nobody could answer
        for (their owner down and the frontends asked instead failing too)."""
        self.stats["lookups"] += 1
        uids = list(dict.fromkeys(uids))
        view = self.view()
        if not uids or not view:
            return {}, []
        groups = group_by_owner(uids, view)
        answers, failed = self._lookup_owners(groups)
        found = {}
        for result in answers.values():
            found.update(result)
        missing = [u for owner in failed for u in groups[owner]]
        unreachable = []
        if missing:
            logger.warning("%s: uid directory owner(s) %s did not answer; asking every frontend",
                           self._app.server_id, ", ".join(sorted(failed)))
            asked = [f for f in view if f not in failed]
            local, down = self._ask_each({f: missing for f in asked}, self._app.sys_calls.dir_local,
                                         lambda f: [missing])
            for fid, held in local.items():
                for uid, sids in held.items():
                    found.setdefault(uid, []).extend([fid, sid] for sid in sids)
            if down or failed:
                unreachable = [u for u in missing if u not in found]
        live = set(view)
        for uid in list(found):
            sessions = [s for s in found[uid] if s[0] in live]
            if sessions:
                found[uid] = sessions
            else:
                del found[uid]
        self.stats["unreachable"] += len(unreachable)
        return found, unreachable

    def _lookup_owners(self, groups):
        """{owner: [uid, ...]} -> ({owner: found}, {owner: error}), without a greenlet per owner.
        Lookups for the same owner begun in the same turn of the event loop (concurrent pushes)
        share one ``dir_lookup`` call for the union of their uids (``_send_batch``)."""
        answers, failed, waits = {}, {}, {}
        for owner, uids in groups.items():
            if owner == self._app.server_id:       # our own shard: in place
                try:
                    answers[owner] = self._app.sys_calls.dir_lookup(owner, uids)
                except Exception as exc:
                    failed[owner] = exc
                continue
            batch = self._batches.get(owner)
            if batch is None:
                batch = self._batches[owner] = ({}, AsyncResult())
                gevent.get_hub().loop.run_callback(self._send_batch, owner)
            batch[0].update(dict.fromkeys(uids))
            waits[owner] = batch[1]
        for owner, result in waits.items():
            try:
                found = result.get()
            except Exception as exc:
                failed[owner] = exc
                continue
            answers[owner] = {uid: found[uid] for uid in groups[owner] if uid in found}
        return answers, failed

    def _send_batch(self, owner):
        """Runs in the hub (must not block): one asynchronous call for the batch."""
        wanted, result = self._batches.pop(owner)
        self.stats["lookup_calls"] += 1

        def done(error, found):
            if error is not None:
                result.set_exception(error)
            else:
                result.set(found)
        try:
            self._app.sys_calls.dir_lookup_async(owner, list(wanted), done)
        except Exception as exc:      # arguments msgpack cannot carry, a closed client
            result.set_exception(exc)

    @staticmethod
    def _ask_each(targets, call, args_of):
        """``call(server_id, *args_of(server_id))`` on several servers in parallel ->
        ({id: result}, {id: error})."""
        if len(targets) == 1:
            (server_id,) = targets
            try:
                return {server_id: call(server_id, *args_of(server_id))}, {}
            except Exception as exc:
                return {}, {server_id: exc}
        jobs = {sid: gevent.spawn(call, sid, *args_of(sid)) for sid in targets}
        gevent.joinall(list(jobs.values()))
        results = {sid: job.value for sid, job in jobs.items() if job.successful()}
        errors = {sid: job.exception for sid, job in jobs.items() if not job.successful()}
        return results, errors

    def frontends_of(self, uid):
        """The frontend ids holding uid's sessions (empty when offline)."""
        found, _ = self.lookup([uid])
        return list(dict.fromkeys(fid for fid, _ in found.get(uid, ())))

    def push_to_uids(self, uids, route, msg):
        """Push to every session of each uid, wherever it is; returns the uids not reached
        (offline, or their directory owner and every frontend asked instead did not answer).
        Inside an app.db transaction the pushes leave on commit; the lookup is done now."""
        uids = list(dict.fromkeys(uids))
        found, _ = self.lookup(uids)
        groups = {}
        for uid, sessions in found.items():
            for fid, _sid in sessions:
                groups.setdefault(fid, {})[uid] = None
        pushes = self._app.pushes
        for fid, members in groups.items():
            pushes.to_uids(fid, route, msg, list(members))
        self.stats["pushes"] += 1
        offline = [u for u in uids if u not in found]
        self.stats["offline"] += len(offline)
        return offline

    def kick(self, uid, reason="kick"):
        """Kick every session of uid wherever it is; returns how many were kicked."""
        found, _ = self.lookup([uid])
        kicked = 0
        for fid, sid in found.get(uid, ()):
            try:
                kicked += self._app.sys_calls.kick_by_sid(fid, sid, reason)
            except ZpomeloError as exc:
                logger.warning("kick of %r on %s failed: %s", uid, fid, exc)
        return kicked

    # -- holder side (frontends) ----------------------------------------------------------------
    def claim(self, session, uid):
        """Register a bind with uid's owner before it takes effect here (blocks one round trip).
        With oneSessionPerUid the owner kicks the uid's older session, wherever it is."""
        app = self._app
        owner = owner_of(uid, self.view())
        if owner is None:
            return
        key = (uid, session.id)
        self._pending[key] = None     # a sync taken meanwhile must not drop this claim
        try:
            app.sys_calls.dir_claim(owner, uid, app.server_id, session.id,
                                    bool(app.setting("oneSessionPerUid")))
        except Exception as exc:
            raise ZpomeloError("cannot bind uid %r: its directory owner %s did not answer (%s); "
                               "try again" % (uid, owner, exc)) from exc
        finally:
            self._pending.pop(key, None)

    def release(self, uid, sid):
        """The session sid no longer holds uid (unbind, close): tell the owner, without waiting."""
        owner = owner_of(uid, self.view())
        if owner is not None:
            self._app.sys_calls.dir_release_async(owner, uid, self._app.server_id, sid)

    def sync_all(self):
        """Send every owner the complete list of our entries it owns (empty lists too: they clear
        what an owner still holds from before, e.g. from our previous process)."""
        app = self._app
        frontend = app.frontend
        if frontend is None:
            return
        view = self.view()
        if not view:
            return
        groups = {owner: [] for owner in view}
        for uid, sessions in frontend.sessions.uid_map.items():
            pairs = groups[owner_of(uid, view)]
            pairs.extend([uid, s.id] for s in sessions)
        for uid, sid in self._pending:
            groups[owner_of(uid, view)].append([uid, sid])
        for owner, pairs in groups.items():
            self.stats["syncs_sent"] += 1
            app.sys_calls.dir_sync_async(owner, app.server_id, pairs, list(view), self._sync_done(owner))

    def _sync_done(self, owner):
        def done(error, _result):
            if error is not None:
                self.stats["sync_failures"] += 1
                logger.warning("%s: uid directory sync to %s failed: %s (retried at the next resync)",
                               self._app.server_id, owner, error)
        return done

    # -- membership ----------------------------------------------------------------------------
    def on_member_added(self, record, old):
        if record.frontend:
            # a frontend whose record changed (restarted: new ports) lost its shard: resync it
            self._schedule(force=old is not None and old != record)

    def on_member_removed(self, record):
        if record.frontend:
            self.shard.drop_frontend(record.id)   # its sessions are gone with it
            self._schedule()

    def _schedule(self, force=False):
        """Coalesce a burst of membership events (a full list applied at once) into one pass."""
        if self._app.frontend is None:
            return
        self._force = self._force or force
        if self._scheduled is None:
            self._scheduled = gevent.spawn_later(0, self._membership_changed)

    def _membership_changed(self):
        self._scheduled = None
        view = self.view()
        force, self._force = self._force, False
        if view == self._view and not force:
            return
        self._view = view
        me = self._app.server_id
        self.shard.keep_owned(lambda uid: owner_of(uid, view) == me)
        self.sync_all()

    def start(self):
        """Frontends: the periodic full sync that repairs whatever a failed call left behind."""
        interval = self._app.setting("uidDirectoryResync")
        if self._app.frontend is not None and interval and interval > 0:
            self._resync = gevent.spawn(self._resync_loop, float(interval))

    def _resync_loop(self, interval):
        while True:
            gevent.sleep(interval)
            try:
                self.sync_all()
            except Exception:
                logger.exception("%s: uid directory resync failed", self._app.server_id)

    def stop(self):
        for job in (self._resync, self._scheduled):
            if job is not None:
                job.kill(block=False)
        self._resync = self._scheduled = None

    # -- owner side (frontends; called through _sys) --------------------------------------------
    def serve_claim(self, uid, fid, sid, single):
        displaced = self.shard.claim(uid, fid, sid, single)
        for other_fid, other_sid in displaced:
            self._displace(other_fid, other_sid, uid)
        return len(displaced)

    def _displace(self, fid, sid, uid):
        app = self._app
        if fid == app.server_id:
            if app.frontend is not None:
                app.frontend.sessions.displace(sid, uid, KICK_REASON)
            return
        try:
            app.sys_calls.displace_async(fid, sid, uid, KICK_REASON)
        except ZpomeloError as exc:   # that frontend is gone, and the session with it
            logger.info("%s: older session of %r on %s not kicked: %s", app.server_id, uid, fid, exc)

    def serve_release(self, uid, fid, sid):
        return self.shard.release(uid, fid, sid)

    def serve_sync(self, fid, pairs, view):
        self.shard.replace_frontend(fid, [tuple(p) for p in pairs], view)
        return len(pairs)

    def serve_lookup(self, uids):
        """Entries here; a miss is also asked of the live frontends that have not synced with us
        under our current view (we may have just taken over their share)."""
        found = self.shard.lookup(uids)
        missing = [u for u in uids if u not in found]
        if not missing:
            return found
        unsynced = self.shard.unsynced(self.view())
        if not unsynced:
            return found
        self.stats["scatters"] += 1
        local, _down = self._ask_each({f: missing for f in unsynced}, self._app.sys_calls.dir_local,
                                      lambda f: [missing])
        for fid, held in local.items():
            for uid, sids in held.items():
                found.setdefault(uid, []).extend([fid, sid] for sid in sids)
        return found

    def serve_local(self, uids):
        """{uid: [sid, ...]} for the given uids bound on this frontend."""
        frontend = self._app.frontend
        if frontend is None:
            return {}
        uid_map = frontend.sessions.uid_map
        return {uid: [s.id for s in uid_map[uid]] for uid in uids if uid_map.get(uid)}
