"""Frontend sessions: one per client connection, indexed by sid and by bound uid."""
import logging
import time

from zpomelo.errors import ZpomeloError

logger = logging.getLogger(__name__)


class SessionError(ZpomeloError):
    """A session operation that cannot be done (bind a uid twice, unbind another uid...)."""


class SessionSettings:
    """The key/value settings every session kind carries (``self.settings``, a dict)."""

    __slots__ = ()

    def get(self, key, default=None):
        return self.settings.get(key, default)

    def set(self, key, value=None):
        if isinstance(key, dict):
            self.settings.update(key)
        else:
            self.settings[key] = value

    def remove(self, key):
        self.settings.pop(key, None)


class DetachedConnection:
    """Stands in for the connection of a session waiting for a resume (zpomelo.resume): what is
    written to it goes nowhere (pushes wait in the session's replay buffer)."""

    __slots__ = ("id", "address", "transport")
    state = None
    close_reason = "waiting for a resume"

    def __init__(self, conn):
        self.id = conn.id
        self.address = conn.address
        self.transport = conn.transport

    def send(self, data):
        return False

    def kick(self, reason=""):
        pass

    def close(self, reason="", flush=True):
        pass

    def note_bad_input(self, kind, detail):
        pass


class Session(SessionSettings):
    """The frontend's view of one connected client.

    Responses are released in request order: a request answered early (a fast backend, a
    handler that did not block) waits until the ones before it are answered.
    """

    __slots__ = ("id", "frontend_id", "uid", "settings", "conn", "_service", "_on_closed",
                 "_order", "_ready", "closed", "public_key", "resume", "_hooks", "bound_at")

    def __init__(self, service, conn):
        self._service = service
        self.conn = conn
        self.id = conn.id
        self.frontend_id = service.frontend_id
        self.uid = None
        self.settings = {}
        self._on_closed = []
        self._order = []  # request ids awaiting answers; short (a list is ~10x smaller than a deque)
        self._ready = None
        self.closed = False
        self.public_key = None  # (n, e) when the connector uses crypto
        self.resume = None      # a zpomelo.resume.ResumeState when the client asked for resume
        self._hooks = None      # {"drop": [fn], "resume": [fn]} once registered
        self.bound_at = None    # time.time() of bind(uid): the login time the admin console shows

    @property
    def address(self):
        return self.conn.address

    def push(self, *keys):
        """Settings live here on the frontend: nothing to send."""

    def push_all(self):
        """Settings live here on the frontend: nothing to send."""

    def bind(self, uid):
        self._service.bind(self, uid)

    def unbind(self, uid):
        self._service.unbind(self, uid)

    def kick(self, reason="kick"):
        state = self.resume
        if state is not None:
            state.final = True          # a kicked session gets no resume window
            if state.detached:
                self._service.end(self, "kicked: %s" % (reason,))
                return
        self.conn.kick(reason)

    def on_closed(self, fn):
        """Call ``fn(session, reason)`` once when the session closes: when its connection
        closes, or, for a client that asked for resume, when its resume window ends unused."""
        self._on_closed.append(fn)

    def on_drop(self, fn):
        """Call ``fn(session)`` each time the connection of a resumable session is lost and its
        resume window starts (the session keeps its uid, settings and channels meanwhile)."""
        self._hook_list("drop").append(fn)

    def on_resume(self, fn):
        """Call ``fn(session)`` each time the client comes back within the window."""
        self._hook_list("resume").append(fn)

    def _hook_list(self, kind):
        if self._hooks is None:
            self._hooks = {"drop": [], "resume": []}
        return self._hooks[kind]

    def run_hooks(self, kind):
        for fn in list(self._hooks[kind]) if self._hooks else ():
            try:
                fn(self)
            except Exception:
                logger.exception("on_%s callback of session %s failed", kind, self.id)

    @property
    def detached(self):
        """True while the client is away and the session waits for a resume."""
        return self.resume is not None and self.resume.detached

    def send_push(self, data):
        """Write one encoded push package; a resumable session numbers and keeps it for replay."""
        state = self.resume
        if state is not None:
            state.buffer.append(data)
            if state.detached:
                return True
        return self.conn.send(data)

    def detach(self):
        """The connection is gone: answers still owed are dropped, pushes only buffered."""
        self.conn = DetachedConnection(self.conn)
        self._order = []
        self._ready = None

    def attach(self, conn):
        self.conn = conn

    def snapshot(self):
        """What a backend needs to rebuild this session: [sid, frontend_id, uid, settings]."""
        return [self.id, self.frontend_id, self.uid, self.settings]

    # -- ordered responses -------------------------------------------------------------
    def expect(self, msg_id):
        self._order.append(msg_id)

    def respond(self, msg_id, data):
        order = self._order
        if order and order[0] == msg_id:
            del order[0]
            self.conn.send(data)
            ready = self._ready
            while ready and order and order[0] in ready:
                self.conn.send(ready.pop(order.pop(0)))
        elif msg_id in order:
            if self._ready is None:
                self._ready = {}
            self._ready[msg_id] = data
        else:
            self.conn.send(data)  # not tracked (answered after a reset): send as it is

    @property
    def in_flight(self):
        return len(self._order)

    def _closed(self, reason):
        if self.closed:
            return
        self.closed = True
        for fn in self._on_closed:
            try:
                fn(self, reason)
            except Exception:
                logger.exception("on_closed callback of session %s failed", self.id)
        self._on_closed = []


class SessionService:
    """sid -> session and uid -> sessions on one frontend."""

    def __init__(self, frontend_id, single_session=False, directory=None):
        self.frontend_id = frontend_id
        self.single_session = single_session
        # the cluster's uid directory (zpomelo.players.Players, duck-typed): ``claim(session,
        # uid)`` before a bind takes effect (may block, may raise), ``release(uid, sid)`` after
        # an unbind or close; None keeps sessions local (tests of this module, fake apps)
        self.directory = directory
        self.sessions = {}
        self.uid_map = {}
        # ends a session for good (the frontend sets it: it also leaves global channels)
        self.end = lambda session, reason: self.close(session.id, reason)

    def __len__(self):
        return len(self.sessions)

    def create(self, conn):
        session = Session(self, conn)
        self.sessions[session.id] = session
        conn.session = session
        return session

    def discard(self, session):
        """Forget a session that was never used (its connection resumed another one)."""
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]
        session.closed = True

    def get(self, sid):
        return self.sessions.get(sid)

    def get_by_uid(self, uid):
        return list(self.uid_map.get(uid, ()))

    def bind(self, session, uid):
        if uid is None or uid == "":
            raise SessionError("cannot bind an empty uid")
        if session.uid == uid:
            return
        if session.uid is not None:
            raise SessionError("session %s is already bound to uid %r" % (session.id, session.uid))
        directory = self.directory
        if directory is not None:
            directory.claim(session, uid)
            if session.closed or session.uid is not None:
                # the client left (or was kicked, or bound again) while the claim was out
                directory.release(uid, session.id)
                if session.uid == uid:
                    return
                raise SessionError("session %s closed or was bound elsewhere while binding uid %r"
                                   % (session.id, uid))
        others = self.uid_map.get(uid)
        if others and self.single_session:
            for other in list(others):
                other.kick("another login with the same uid")
        session.uid = uid
        session.bound_at = time.time()
        self.uid_map.setdefault(uid, []).append(session)

    def unbind(self, session, uid):
        if session.uid != uid:
            raise SessionError("session %s is not bound to uid %r" % (session.id, uid))
        self._forget_uid(session)
        session.uid = None
        if self.directory is not None:
            self.directory.release(uid, session.id)

    def displace(self, sid, uid, reason):
        """A newer login of uid (here or on another frontend) took over: this session stops
        receiving uid's pushes now and is kicked with ``reason``. Returns 1 if it was kicked."""
        session = self.sessions.get(sid)
        if session is None or session.uid not in (uid, None):
            return 0
        if session.uid is not None:
            self._forget_uid(session)   # session.uid stays: its on_closed callbacks read it
        session.kick(reason)
        return 1

    def _forget_uid(self, session):
        sessions = self.uid_map.get(session.uid)
        if sessions is None:
            return
        try:
            sessions.remove(session)
        except ValueError:
            pass
        if not sessions:
            del self.uid_map[session.uid]

    def close(self, sid, reason):
        session = self.sessions.pop(sid, None)
        if session is None:
            return None
        if session.uid is not None:
            self._forget_uid(session)
            if self.directory is not None:
                self.directory.release(session.uid, session.id)
        session._closed(reason)
        return session

    def kick_by_uid(self, uid, reason="kick"):
        sessions = self.get_by_uid(uid)
        for session in sessions:
            session.kick(reason)
        return len(sessions)

    def kick_by_sid(self, sid, reason="kick"):
        session = self.sessions.get(sid)
        if session is None:
            return 0
        session.kick(reason)
        return 1

    def import_settings(self, sid, settings):
        session = self.sessions.get(sid)
        if session is None:
            raise SessionError("no session %s on %s" % (sid, self.frontend_id))
        session.settings.update(settings)

    def send_to_uids(self, uids, data):
        """Send one encoded package to every connection of each uid; returns how many got it."""
        sent = 0
        uid_map = self.uid_map
        for uid in uids:
            for session in uid_map.get(uid, ()):
                if session.resume is None:
                    session.conn.send(data)
                else:
                    session.send_push(data)
                sent += 1
        return sent

    def send_to_all(self, data, bound_only=False):
        sent = 0
        for session in list(self.sessions.values()):
            if bound_only and session.uid is None:
                continue
            session.send_push(data)
            sent += 1
        return sent
