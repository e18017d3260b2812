"""Sessions seen from a backend: a snapshot of the frontend session plus calls back home."""
from zpomelo.errors import ZpomeloError
from zpomelo.session import SessionSettings

SYS = "_sys"  # user remote files cannot start with "_", so this never clashes


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

    def _call(self, method, *args):
        return self._app.rpc_call(self.frontend_id, SYS, method, list(args))

    def bind(self, uid):
        self._call("session_bind", self.id, uid)
        self.uid = uid

    def unbind(self, uid):
        self._call("session_unbind", self.id, uid)
        self.uid = None

    def push(self, *keys):
        self._call("session_push", self.id, {k: self.settings.get(k) for k in keys})

    def push_all(self):
        self._call("session_push", self.id, dict(self.settings))

    def kick(self, reason="kick"):
        self._call("session_kick_sid", self.id, reason)

    def on_closed(self, fn):
        raise ZpomeloError(
            "on_closed is only available on the frontend session; register it in a frontend "
            "handler (e.g. connector.entryHandler) or call a remote from there")

    def snapshot(self):
        return [self.id, self.frontend_id, self.uid, self.settings]


class BackendSessionService:
    """Find and kick sessions held by frontends, from any server."""

    def __init__(self, app):
        self._app = app

    def _call(self, frontend_id, method, *args):
        return self._app.rpc_call(frontend_id, SYS, method, list(args))

    def get(self, frontend_id, sid):
        snap = self._call(frontend_id, "session_get", sid)
        return BackendSession.from_snapshot(self._app, snap) if snap else None

    def get_by_uid(self, frontend_id, uid):
        return [BackendSession.from_snapshot(self._app, s)
                for s in self._call(frontend_id, "session_get_by_uid", uid)]

    def kick_by_uid(self, frontend_id, uid, reason="kick"):
        return self._call(frontend_id, "session_kick_uid", uid, reason)

    def kick_by_sid(self, frontend_id, sid, reason="kick"):
        return self._call(frontend_id, "session_kick_sid", sid, reason)
