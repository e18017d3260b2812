"""Sessions seen from a backend: a snapshot of the frontend session plus calls back home."""
from zpomelo.db.transaction import after_commit
from zpomelo.errors import ZpomeloError
from zpomelo.session import SessionSettings


class BackendSession(SessionSettings):
    """Rebuilt on the backend for each forwarded request; changes go home over RPC."""

    __slots__ = ("id", "frontend_id", "uid", "settings", "_app")

    def __init__(self, app, sid, frontend_id, uid, settings):
        self._app = app
        self.id = sid
        self.frontend_id = frontend_id
        self.uid = uid
        self.settings = settings if settings is not None else {}

    @classmethod
    def from_snapshot(cls, app, snapshot):
        sid, frontend_id, uid, settings = snapshot
        return cls(app, sid, frontend_id, uid, settings)

    @property
    def address(self):
        return None

    def bind(self, uid):
        self._app.sys_calls.session_bind(self.frontend_id, self.id, uid)
        self.uid = uid

    def unbind(self, uid):
        self._app.sys_calls.session_unbind(self.frontend_id, self.id, uid)
        self.uid = None

    # Inside a transaction (app.db) these wait for its commit and are dropped on rollback.
    def push(self, *keys):
        after_commit(self._app.sys_calls.session_push, self.frontend_id, self.id,
                     {k: self.settings.get(k) for k in keys})

    def push_all(self):
        after_commit(self._app.sys_calls.session_push, self.frontend_id, self.id, dict(self.settings))

    def kick(self, reason="kick"):
        after_commit(self._app.sys_calls.kick_by_sid, self.frontend_id, self.id, reason)

    def on_closed(self, fn):
        raise ZpomeloError(
            "on_closed is only available on the frontend session; register it in a frontend "
            "handler (e.g. connector.entryHandler) or call a remote from there")

    def on_drop(self, fn):
        raise ZpomeloError("on_drop is only available on the frontend session; register it in a "
                           "frontend handler (e.g. connector.entryHandler)")

    def on_resume(self, fn):
        raise ZpomeloError("on_resume is only available on the frontend session; register it in "
                           "a frontend handler (e.g. connector.entryHandler)")

    def snapshot(self):
        return [self.id, self.frontend_id, self.uid, self.settings]


class BackendSessionService:
    """Find and kick sessions held by frontends, from any server."""

    def __init__(self, app):
        self._app = app

    def get(self, frontend_id, sid):
        snap = self._app.sys_calls.session_get(frontend_id, sid)
        return BackendSession.from_snapshot(self._app, snap) if snap else None

    def get_by_uid(self, *args):
        """``get_by_uid(frontend_id, uid)``: uid's sessions on that frontend (Pomelo's form);
        ``get_by_uid(uid)``: uid's sessions wherever they are, found in the uid directory.
        Either way a list, empty when uid is not online."""
        if len(args) == 2:
            frontend_id, uid = args
            return [BackendSession.from_snapshot(self._app, s)
                    for s in self._app.sys_calls.session_get_by_uid(frontend_id, uid)]
        (uid,) = args
        found, _ = self._app.players.lookup([uid])
        sessions = []
        for frontend_id, sid in found.get(uid, ()):
            snap = self._app.sys_calls.session_get(frontend_id, sid)
            if snap:
                sessions.append(BackendSession.from_snapshot(self._app, snap))
        return sessions

    def kick_by_uid(self, frontend_id, uid, reason="kick"):
        return self._app.sys_calls.kick_by_uid(frontend_id, uid, reason)

    def kick_uid(self, uid, reason="kick"):
        """Kick uid's sessions wherever they are (the uid directory); returns how many."""
        return self._app.players.kick(uid, reason)

    def kick_by_sid(self, frontend_id, sid, reason="kick"):
        return self._app.sys_calls.kick_by_sid(frontend_id, sid, reason)
