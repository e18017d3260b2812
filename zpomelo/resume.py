"""Session resume: a dropped client comes back within ``resumeWindow`` and gets its session back.

Only clients that ask for it in the handshake (``sys.resume``, docs/protocol.md "Session
resume") take part; a stock Pomelo client never sends that key, never sees a byte of this, and
its session closes when its connection does, as before.

Pieces:
- ``ResumeTokens``: the token is HMAC-SHA256 (key derived from the cluster secret) over the
  frontend id, the session id and a random nonce kept by the session. It proves the session, not
  the client: whoever holds it owns the session, like a session cookie, so it is only ever sent
  to the client that holds the session (over TLS when the connector uses it). The nonce changes
  at every resume, so a token that was used once is dead, and a restarted frontend (whose sids
  start again at 1) never matches an old token.
- ``ReplayBuffer``: the pushes of one session with their sequence numbers (1, 2, ... per
  session; the client counts the pushes it has read, so the wire carries no numbers). A push
  written to a socket is not yet read by the client (kernel buffers, the write queue), so the
  buffer keeps the last ``resumeBuffer`` pushes (at most ``resumeBufferBytes``) all the time; a
  resuming client says how many it read and gets the rest. When pushes it never read were pushed
  out of the buffer, the resume is refused and the client gets a fresh session.
- ``ResumeState``: per resumable session: nonce, buffer, whether it is detached and its expiry
  timer, and the connection that is resuming it (between its handshake and its ACK).
- ``SessionResume``: the frontend's side (``frontend.resume``): handshake, drop, ACK, expiry.
"""
import base64
import hashlib
import hmac
import itertools
import logging
import os
import secrets
from collections import deque

import gevent

from zpomelo import settings

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "r1"
_KEY_LABEL = b"zpomelo session resume token v1"
_C = settings.CONNECTOR


class ResumeRefused(Exception):
    """Why a resume was not granted (the client gets a fresh session and this text).
    ``overflowed``: pushes the client lacks are gone, so the old session is of no use to anyone."""

    overflowed = False


class BufferOverflowed(ResumeRefused):
    overflowed = True


class ResumeTokens:
    """Issues and checks resume tokens for one frontend."""

    def __init__(self, secret, frontend_id):
        if not secret:
            # No cluster secret (a bare test app): a per-process key still makes tokens
            # unforgeable; they only ever work on this process anyway.
            secret = os.urandom(32)
            logger.info("%s: no cluster secret; resume tokens are signed with a per-process key",
                        frontend_id)
        self._key = hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()
        self._frontend = base64.urlsafe_b64encode(frontend_id.encode("utf-8")).decode("ascii")

    def _mac(self, text):
        return hmac.new(self._key, text.encode("ascii"), hashlib.sha256).hexdigest()

    def issue(self, sid, nonce):
        text = "%s.%s.%d.%s" % (TOKEN_PREFIX, self._frontend, sid, nonce)
        return "%s.%s" % (text, self._mac(text))

    def check(self, token):
        """(sid, nonce) of a token this frontend issued; ResumeRefused otherwise."""
        if not isinstance(token, str) or len(token) > 512:
            raise ResumeRefused("the resume token is not a string of at most 512 characters")
        parts = token.split(".")
        if len(parts) != 5 or parts[0] != TOKEN_PREFIX:
            raise ResumeRefused("the resume token is malformed")
        text, mac = ".".join(parts[:4]), parts[4]
        try:
            good = hmac.compare_digest(self._mac(text), mac)
        except (TypeError, UnicodeEncodeError):
            good = False
        if not good:
            raise ResumeRefused("the resume token's signature is wrong")
        if parts[1] != self._frontend:
            raise ResumeRefused("the resume token belongs to another frontend")
        try:
            return int(parts[2]), parts[3]
        except ValueError:
            raise ResumeRefused("the resume token is malformed") from None


class ReplayBuffer:
    """The last pushes of one session, numbered from 1; bounded by count and bytes."""

    __slots__ = ("seq", "max_pushes", "max_bytes", "_items", "_bytes")

    def __init__(self, max_pushes, max_bytes):
        self.seq = 0                 # the number of the last push appended
        self.max_pushes = max_pushes
        self.max_bytes = max_bytes
        self._items = deque()
        self._bytes = 0

    def __len__(self):
        return len(self._items)

    def append(self, data):
        self.seq += 1
        items = self._items
        items.append(data)
        self._bytes += len(data)
        while items and (len(items) > self.max_pushes or self._bytes > self.max_bytes):
            self._bytes -= len(items.popleft())

    def after(self, received):
        """The pushes numbered above ``received``; ResumeRefused when some are gone."""
        if received.__class__ is not int or not 0 <= received <= self.seq:
            raise ResumeRefused("the client says it read %r pushes; this session sent %d"
                                % (received, self.seq))
        missing = self.seq - received
        if missing > len(self._items):
            raise BufferOverflowed("%d pushes were missed, more than the replay buffer keeps (%d "
                                "pushes, %d bytes: resumeBuffer / resumeBufferBytes)"
                                % (missing, self.max_pushes, self.max_bytes))
        if not missing:
            return []
        return list(itertools.islice(self._items, len(self._items) - missing, None))


class ResumeState:
    __slots__ = ("nonce", "buffer", "detached", "timer", "resuming", "final")

    def __init__(self, buffer):
        self.nonce = secrets.token_hex(8)
        self.buffer = buffer
        self.detached = False        # the connection is gone; pushes only go to the buffer
        self.timer = None            # the window's expiry while detached
        self.resuming = None         # (conn, pushes it read): from its resume handshake to its ACK
        self.final = False           # closed by the server (kick): no window


class SessionResume:
    """The frontend's resume logic. ``frontend`` gives ``sessions``, ``close_session(session,
    reason)``; ``window`` 0 turns it off (clients asking for resume get no ``resume`` reply)."""

    def __init__(self, frontend, raw_config, secret, frontend_id):
        self.frontend = frontend
        self.window = settings.value(raw_config, "resumeWindow", _C)
        self.max_pushes = settings.value(raw_config, "resumeBuffer", _C)
        self.max_bytes = settings.value(raw_config, "resumeBufferBytes", _C)
        if self.window < 0 or self.max_pushes < 1 or self.max_bytes < 1:
            from zpomelo.errors import ConfigError
            raise ConfigError("resumeWindow must be >= 0 and resumeBuffer / resumeBufferBytes "
                              "at least 1, got %r / %r / %r"
                              % (self.window, self.max_pushes, self.max_bytes), field="resumeWindow")
        queue = getattr(getattr(frontend, "connector_config", None), "write_queue_limit", None)
        if queue is not None and self.max_bytes > queue:
            logger.warning("resumeBufferBytes %d is more than a connection may queue (%d): "
                           "using %d, so a replay cannot close its own connection",
                           self.max_bytes, queue, queue)
            self.max_bytes = queue
        self.tokens = ResumeTokens(secret, frontend_id) if self.window else None
        self.stats = {"resumed": 0, "refused": 0, "dropped": 0, "expired": 0, "replayed": 0}

    @property
    def enabled(self):
        return bool(self.window)

    # -- handshake -----------------------------------------------------------------------
    def on_handshake(self, conn, session, request):
        """``request`` is the client's ``sys.resume``. Returns (session to use, reply dict)."""
        if not self.window:
            return session, None
        token = request.get("token") if isinstance(request, dict) else None
        if token is None:
            return self._fresh(session), self._reply(session, False)
        try:
            old = self._take(conn, token, request.get("pushes", 0))
        except ResumeRefused as exc:
            self.stats["refused"] += 1
            logger.info("resume from %s:%s refused: %s", conn.address[0], conn.address[1], exc)
            return self._fresh(session), self._reply(session, False, str(exc))
        self.frontend.sessions.discard(session)
        return old, self._reply(old, True)

    def _fresh(self, session):
        session.resume = ResumeState(ReplayBuffer(self.max_pushes, self.max_bytes))
        return session

    def _reply(self, session, resumed, reason=None):
        state = session.resume
        reply = {"token": self.tokens.issue(session.id, state.nonce), "window": self.window,
                 "resumed": resumed}
        if reason is not None:
            reply["reason"] = reason
        return reply

    def _take(self, conn, token, pushes):
        sid, nonce = self.tokens.check(token)
        session = self.frontend.sessions.get(sid)
        state = session.resume if session is not None else None
        if state is None or not hmac.compare_digest(state.nonce, nonce):
            raise ResumeRefused("no session to resume (its window ended, it closed or was "
                                "already resumed)")
        try:
            state.buffer.after(pushes)   # refuses now when pushes the client lacks are gone
        except BufferOverflowed:
            # the client goes on with a fresh session: the old one must not linger (its uid)
            self._end(session, state, "resume refused: replay buffer overflowed")
            raise
        if not state.detached:
            # The old connection still looks alive to us (a stalled network: the client gave up
            # first). The token proves the session: move it, and drop the old connection.
            old = session.conn
            self.drop(session, "resumed on a new connection")
            old.close("resumed on a new connection", flush=False)
        previous = state.resuming
        state.resuming = (conn, pushes)
        if previous is not None and previous[0] is not conn:
            previous[0].close("resumed by a newer connection", flush=False)
        state.nonce = secrets.token_hex(8)     # the used token is dead from here on
        conn.session = session
        return session

    # -- the connection's life -----------------------------------------------------------
    def holds(self, session, conn):
        """Whether this closing connection leaves its session waiting for a resume."""
        state = session.resume
        return (state is not None and self.window and not state.final
                and not getattr(conn, "client_left", False) and not getattr(conn, "kicked", False)
                and not self.frontend.stopping)

    def drop(self, session, reason):
        """The connection is gone: keep the session detached for the window; on_drop hooks."""
        state = session.resume
        state.detached = True
        state.resuming = None
        session.detach()
        self.stats["dropped"] += 1
        state.timer = gevent.spawn_later(self.window, self._expire, session, state)
        session.run_hooks("drop")
        logger.debug("session %s dropped (%s); held %s s for a resume", session.id, reason,
                     self.window)

    def on_ready(self, conn):
        """The resuming connection's ACK: attach it, replay what the client missed, on_resume."""
        session = conn.session
        state = session.resume if session is not None else None
        if state is None or state.resuming is None or state.resuming[0] is not conn:
            return
        received = state.resuming[1]
        state.resuming = None
        state.detached = False
        timer, state.timer = state.timer, None
        if timer is not None:
            timer.kill(block=False)
        try:
            replay = state.buffer.after(received)
        except ResumeRefused as exc:     # overflowed between the handshake and the ACK
            logger.info("session %s: resume failed at the ACK: %s", session.id, exc)
            conn.close("resume failed: %s" % exc, flush=False)
            self.frontend.close_session(session, "resume failed")
            return
        session.attach(conn)
        send = conn.send
        for data in replay:
            send(data)
        self.stats["resumed"] += 1
        self.stats["replayed"] += len(replay)
        session.run_hooks("resume")

    def _end(self, session, state, reason):
        state.final = True
        pending, state.resuming = state.resuming, None
        if pending is not None:
            pending[0].close(reason, flush=False)
        if state.detached:
            self.frontend.close_session(session, reason)
        else:
            session.conn.close(reason, flush=False)     # on_close ends it: final, no window

    def _expire(self, session, state):
        if session.resume is not state or not state.detached:
            return
        self.stats["expired"] += 1
        pending = state.resuming
        state.timer = None
        if pending is not None:
            pending[0].close("resume window expired", flush=False)
        self.frontend.close_session(session, "resume window expired")

    def close_all(self, reason):
        """Close every detached session now (the server stops)."""
        for session in list(self.frontend.sessions.sessions.values()):
            state = session.resume
            if state is not None and state.detached:
                if state.timer is not None:
                    state.timer.kill(block=False)
                self.frontend.close_session(session, reason)
