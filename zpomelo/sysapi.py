"""The framework's own RPC service, ``_sys``: both halves in one file.

- ``SysService`` is the server half: what a server answers under the ``_sys`` service (forwarded
  client requests, the bus port, pushes that came over RPC, and on frontends the session and
  global channel operations that backends ask for).
- ``SysCalls`` is the typed caller half (``app.sys_calls``), used by backend sessions, global
  channels, the push fallback and peer discovery, so a method name is written in this file only.

Game remotes cannot clash with ``_sys``: remote file names cannot start with "_" (loader.py).
"""
import logging

from zpomelo.backend_session import BackendSession
from zpomelo.errors import CODE_FAIL, ProtocolError, RouteError
from zpomelo.protocol.codec import decode_json_body, encode_json
from zpomelo.rpc_proxy import call_each
from zpomelo.session import SessionError

logger = logging.getLogger(__name__)

SYS = "_sys"

# method names (the wire contract between the two halves)
FORWARD = "forward"              # (route, body or its JSON bytes, snapshot[, json_reply]) -> [response body or its JSON bytes, bus mark]
HELLO = "hello"                  # () -> {"id", "busPort"}
PUSH = "push"                    # (*bus message): a push that came over RPC (bus fallback)
SESSION_BIND = "session_bind"
SESSION_UNBIND = "session_unbind"
SESSION_PUSH = "session_push"
SESSION_KICK_SID = "session_kick_sid"
SESSION_KICK_UID = "session_kick_uid"
SESSION_GET = "session_get"
SESSION_GET_BY_UID = "session_get_by_uid"
GCHAN_ADD = "gchan_add"
GCHAN_LEAVE = "gchan_leave"
GCHAN_MEMBERS = "gchan_members"
GCHAN_DESTROY = "gchan_destroy"
SESSION_DISPLACE = "session_displace"   # (sid, uid, reason): a newer login of uid took over
# the uid directory (zpomelo.players): holders -> owners, callers -> owners, owners -> holders
DIR_CLAIM = "dir_claim"          # (uid, frontend id, sid, single) -> sessions displaced
DIR_RELEASE = "dir_release"      # (uid, frontend id, sid)
DIR_SYNC = "dir_sync"            # (frontend id, [[uid, sid], ...], view)
DIR_LOOKUP = "dir_lookup"        # ([uid, ...]) -> {uid: [[frontend id, sid], ...]}
DIR_LOCAL = "dir_local"          # ([uid, ...]) -> {uid: [sid, ...]} bound on that frontend

HELLO_TIMEOUT = 5.0


def served_while_stopping(service, method):
    """While draining, a stopping server still answers the _sys calls that work in flight
    elsewhere needs (sessions, global channels, pushes, hello); new work (forwarded requests,
    game remotes) is refused (``RpcServer.stop_accepting(keep=...)``)."""
    return service == SYS and method != FORWARD


class SysService:
    """The server half: ``dispatch(method, args)`` for calls to the ``_sys`` service."""

    def __init__(self, app):
        self.app = app
        self._methods = {
            FORWARD: self.forward,
            HELLO: self.hello,
            PUSH: self.push,
            SESSION_BIND: self.session_bind,
            SESSION_UNBIND: self.session_unbind,
            SESSION_PUSH: self.session_push,
            SESSION_KICK_SID: self.session_kick_sid,
            SESSION_KICK_UID: self.session_kick_uid,
            SESSION_GET: self.session_get,
            SESSION_GET_BY_UID: self.session_get_by_uid,
            GCHAN_ADD: self.gchan_add,
            GCHAN_LEAVE: self.gchan_leave,
            GCHAN_MEMBERS: self.gchan_members,
            GCHAN_DESTROY: self.gchan_destroy,
            SESSION_DISPLACE: self.session_displace,
            DIR_CLAIM: self.dir_claim,
            DIR_RELEASE: self.dir_release,
            DIR_SYNC: self.dir_sync,
            DIR_LOOKUP: self.dir_lookup,
            DIR_LOCAL: self.dir_local,
        }

    def dispatch(self, method, args):
        fn = self._methods.get(method)
        if fn is None:
            raise RouteError("no system call %r on %s" % (method, self.app.server_id))
        return fn(*args)

    # -- every server --------------------------------------------------------------------
    def forward(self, route, body, snapshot, json_reply=False):
        """A client request forwarded by a frontend: run it here with a backend session.

        ``body`` is the request's JSON bytes as the client sent them (decoded here: a
        ``BodyError`` tells the frontend to count it as bad input and answer 500) or, from a
        frontend that decoded it, the object. ``json_reply``: answer with the response already
        encoded as JSON bytes (the frontend wraps them as they are).

        The answer carries our bus mark for the requesting frontend (``Bus.mark``): the frontend
        holds the answer until every push we published to it before answering has been
        delivered, so a handler's pushes to its own client arrive before the answer."""
        if body.__class__ is bytes:
            body = decode_json_body(body, 0, route)
        app = self.app
        session = BackendSession.from_snapshot(app, snapshot)
        response = app.handler_service.handle(route, body, session)
        if json_reply:
            try:
                response = encode_json(response, "the response body of %s" % route)
            except ProtocolError as exc:
                logger.error("cannot encode the response of %s: %s", route, exc)
                response = encode_json({"code": CODE_FAIL, "error": "the response could not be encoded"})
        bus = app.bus
        return [response, bus.mark(session.frontend_id) if bus is not None else None]

    def hello(self):
        record = self.app.current_server
        return {"id": record.id, "busPort": record.extra.get("busPort")}

    def push(self, *message):
        """A push sent over RPC because our bus subscription was not confirmed yet."""
        self.app.pushes.deliver_here(list(message))

    # -- frontends only ------------------------------------------------------------------
    def _frontend(self):
        frontend = self.app.frontend
        if frontend is None:
            raise SessionError("%s is not a frontend server: it holds no sessions" % self.app.server_id)
        return frontend

    def _session(self, sid):
        session = self._frontend().sessions.get(sid)
        if session is None:
            raise SessionError("no session %s on %s (the client has gone)" % (sid, self.app.server_id))
        return session

    def session_bind(self, sid, uid):
        self._session(sid).bind(uid)
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

    def session_displace(self, sid, uid, reason):
        return self._frontend().sessions.displace(sid, uid, reason)

    def gchan_add(self, name, uid):
        """Only a uid connected here becomes a member here (it leaves when it disconnects)."""
        frontend = self._frontend()
        if not frontend.sessions.get_by_uid(uid):
            return False
        return frontend.global_members.add(name, uid)

    def gchan_leave(self, name, uid):
        return self._frontend().global_members.leave(name, uid)

    def gchan_members(self, name):
        return self._frontend().global_members.members(name)

    def gchan_destroy(self, name):
        return self._frontend().global_members.destroy(name)

    # the uid directory: this frontend as owner (claims, releases, syncs, lookups) and holder
    def dir_claim(self, uid, frontend_id, sid, single):
        self._frontend()
        return self.app.players.serve_claim(uid, frontend_id, sid, single)

    def dir_release(self, uid, frontend_id, sid):
        self._frontend()
        return self.app.players.serve_release(uid, frontend_id, sid)

    def dir_sync(self, frontend_id, pairs, view):
        self._frontend()
        return self.app.players.serve_sync(frontend_id, pairs, view)

    def dir_lookup(self, uids):
        self._frontend()
        return self.app.players.serve_lookup(uids)

    def dir_local(self, uids):
        return self.app.players.serve_local(uids)


class SysCalls:
    """The caller half (``app.sys_calls``): one method per ``_sys`` call a server makes.

    Blocking calls go through ``app.rpc_call`` (RPC filters, calls to ourselves run in place).
    """

    def __init__(self, app):
        self._app = app

    def _call(self, server_id, method, *args):
        return self._app.rpc_call(server_id, SYS, method, list(args))

    # sessions held by a frontend
    def session_bind(self, frontend_id, sid, uid):
        return self._call(frontend_id, SESSION_BIND, sid, uid)

    def session_unbind(self, frontend_id, sid, uid):
        return self._call(frontend_id, SESSION_UNBIND, sid, uid)

    def session_push(self, frontend_id, sid, settings):
        return self._call(frontend_id, SESSION_PUSH, sid, settings)

    def kick_by_sid(self, frontend_id, sid, reason="kick"):
        return self._call(frontend_id, SESSION_KICK_SID, sid, reason)

    def kick_by_uid(self, frontend_id, uid, reason="kick"):
        return self._call(frontend_id, SESSION_KICK_UID, uid, reason)

    def session_get(self, frontend_id, sid):
        return self._call(frontend_id, SESSION_GET, sid)

    def session_get_by_uid(self, frontend_id, uid):
        return self._call(frontend_id, SESSION_GET_BY_UID, uid)

    # global channels: each frontend keeps the members connected to it
    def gchan_add(self, frontend_id, name, uid):
        return self._call(frontend_id, GCHAN_ADD, name, uid)

    def gchan_leave(self, frontend_id, name, uid):
        return self._call(frontend_id, GCHAN_LEAVE, name, uid)

    def gchan_members(self, frontend_ids, name):
        """({frontend id: [uid, ...]}, {frontend id: error}) from every frontend at once."""
        return call_each(self._app, frontend_ids, SYS, GCHAN_MEMBERS, [name])

    def gchan_destroy(self, frontend_ids, name):
        """({frontend id: destroyed?}, {frontend id: error}): a frontend down keeps nothing."""
        return call_each(self._app, frontend_ids, SYS, GCHAN_DESTROY, [name])

    # the uid directory (zpomelo.players)
    def dir_claim(self, owner_id, uid, frontend_id, sid, single):
        return self._call(owner_id, DIR_CLAIM, uid, frontend_id, sid, single)

    def dir_lookup(self, owner_id, uids):
        return self._call(owner_id, DIR_LOOKUP, uids)

    def dir_lookup_async(self, owner_id, uids, callback):
        """Non-blocking (the batched lookups of zpomelo.players); ``callback(error, found)``."""
        self._app.rpc_client.call_async(owner_id, SYS, DIR_LOOKUP, [uids], None, callback)

    def dir_local(self, frontend_id, uids):
        return self._call(frontend_id, DIR_LOCAL, uids)

    def dir_release_async(self, owner_id, uid, frontend_id, sid):
        """Fire and forget (a close must not wait); a lost release is repaired by the resync."""
        self._send(owner_id, DIR_RELEASE, uid, frontend_id, sid)

    def displace_async(self, frontend_id, sid, uid, reason):
        self._send(frontend_id, SESSION_DISPLACE, sid, uid, reason)

    def dir_sync_async(self, owner_id, frontend_id, pairs, view, callback):
        args = [frontend_id, pairs, view]
        if owner_id == self._app.server_id:
            try:
                result = self._app.remotes.call_here(SYS, DIR_SYNC, args)
            except Exception as exc:
                callback(exc, None)
                return
            callback(None, result)
            return
        self._app.rpc_client.call_async(owner_id, SYS, DIR_SYNC, args, None, callback)

    def _send(self, server_id, method, *args):
        """A notify, run in place when it is for this server (in the caller's order)."""
        if server_id == self._app.server_id:
            try:
                self._app.remotes.call_here(SYS, method, list(args))
            except Exception:
                logger.exception("%s: _sys.%s here failed", server_id, method)
            return
        try:
            self._app.rpc_client.notify(server_id, SYS, method, list(args))
        except Exception as exc:
            logger.info("_sys.%s to %s not sent: %s", method, server_id, exc)

    # plumbing between servers (non-blocking)
    def hello_async(self, server_id, callback):
        """Ask a peer for its bus port; ``callback(error, {"id", "busPort"})``."""
        self._app.rpc_client.call_async(server_id, SYS, HELLO, [], HELLO_TIMEOUT, callback)

    def push_packed(self, frontend_id, packed_message):
        """Send a push over RPC; ``packed_message`` (the msgpack bus message) becomes the call's
        arguments as it is, not wrapped in another envelope."""
        self._app.rpc_client.notify_packed(frontend_id, SYS, PUSH, packed_message)
