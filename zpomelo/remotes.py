"""What a server answers over RPC: the framework's own ``_sys`` calls and the game's remotes."""
import logging

from zpomelo.backend_session import BackendSession
from zpomelo.errors import RouteError
from zpomelo.session import SessionError

logger = logging.getLogger(__name__)

SYS = "_sys"


class RemoteDispatcher:
    def __init__(self, app, remotes):
        self.app = app
        self.remotes = remotes  # {remote name: {function name: function}}
        self._sys = {
            "forward": self.forward,
            "hello": self.hello,
            "bus": self.bus,
            "session_bind": self.session_bind,
            "session_unbind": self.session_unbind,
            "session_push": self.session_push,
            "session_kick_sid": self.session_kick_sid,
            "session_kick_uid": self.session_kick_uid,
            "session_get": self.session_get,
            "session_get_by_uid": self.session_get_by_uid,
            "gchan_add": self.gchan_add,
            "gchan_leave": self.gchan_leave,
            "gchan_members": self.gchan_members,
            "gchan_destroy": self.gchan_destroy,
        }

    def dispatch(self, service, method, args):
        if service == SYS:
            fn = self._sys.get(method)
            if fn is None:
                raise RouteError("no system call %r on %s" % (method, self.app.server_id))
            return fn(*args)
        functions = self.remotes.get(service)
        fn = functions.get(method) if functions is not None else None
        if fn is None:
            raise RouteError("no remote %s.%s.%s on %s" % (
                self.app.server_type, service, method, self.app.server_id))
        return fn(self.app, *args)

    # -- every server --------------------------------------------------------------------
    def forward(self, route, body, snapshot):
        """A client request forwarded by a frontend: run it here with a backend session."""
        session = BackendSession.from_snapshot(self.app, snapshot)
        return self.app.handler_service.handle(route, body, session)

    def hello(self):
        record = self.app.current_server
        return {"id": record.id, "busPort": record.extra.get("busPort")}

    # -- frontends only ------------------------------------------------------------------
    def _frontend(self):
        frontend = self.app.frontend
        if frontend is None:
            raise SessionError("%s is not a frontend server: it holds no sessions" % self.app.server_id)
        return frontend

    def bus(self, payload):
        """A push sent over RPC because our bus subscription was not confirmed yet."""
        self.app._on_bus("f", payload)

    def session_bind(self, sid, uid):
        session = self._session(sid)
        session.bind(uid)
        return True

    def session_unbind(self, sid, uid):
        self._session(sid).unbind(uid)
        return True

    def session_push(self, sid, settings):
        self._frontend().sessions.import_settings(sid, settings)
        return True

    def session_kick_sid(self, sid, reason="kick"):
        return self._frontend().sessions.kick_by_sid(sid, reason)

    def session_kick_uid(self, uid, reason="kick"):
        return self._frontend().sessions.kick_by_uid(uid, reason)

    def session_get(self, sid):
        session = self._frontend().sessions.get(sid)
        return session.snapshot() if session is not None else None

    def session_get_by_uid(self, uid):
        return [s.snapshot() for s in self._frontend().sessions.get_by_uid(uid)]

    def _session(self, sid):
        session = self._frontend().sessions.get(sid)
        if session is None:
            raise SessionError("no session %s on %s (the client has gone)" % (sid, self.app.server_id))
        return session

    def gchan_add(self, name, uid):
        return self._frontend().global_members.add(name, uid)

    def gchan_leave(self, name, uid):
        return self._frontend().global_members.leave(name, uid)

    def gchan_members(self, name):
        return self._frontend().global_members.members(name)

    def gchan_destroy(self, name):
        return self._frontend().global_members.destroy(name)
