"""Logged-in browsers of the web console: random session tokens with an expiry and a CSRF token.

A token is 32 random bytes (``secrets``), sent only as an HttpOnly, SameSite=Strict cookie and
looked up in constant time against the server-side table, so JavaScript on another page can
neither read it nor send it. Each session carries its own CSRF token, which the console page
reads from an authenticated JSON answer and sends back in a header with every action; a form
posted from elsewhere cannot know it. Sessions end on logout, after IDLE_SECONDS without a
request, or MAX_SECONDS after login, whichever comes first; they live in the master's memory
only (a restarted master logs everyone out).
"""
import hmac
import secrets
import time

IDLE_SECONDS = 30 * 60
MAX_SECONDS = 12 * 60 * 60
MAX_SESSIONS = 1000         # a login beyond this drops the oldest session
COOKIE = "zpomelo_console"


class ConsoleSession:
    __slots__ = ("token", "user", "csrf", "created", "last_used")

    def __init__(self, user, now):
        self.token = secrets.token_urlsafe(32)
        self.user = user
        self.csrf = secrets.token_urlsafe(32)
        self.created = now
        self.last_used = now

    def expired(self, now):
        return now - self.last_used > IDLE_SECONDS or now - self.created > MAX_SECONDS

    def csrf_ok(self, given):
        return isinstance(given, str) and hmac.compare_digest(self.csrf.encode(),
                                                              given.encode("utf-8", "replace"))


class SessionTable:
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._sessions = {}     # token -> ConsoleSession

    def __len__(self):
        return len(self._sessions)

    def create(self, user):
        now = self._clock()
        self._drop_expired(now)
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.created)
            del self._sessions[oldest.token]
        session = ConsoleSession(user, now)
        self._sessions[session.token] = session
        return session

    def find(self, token):
        """The live session of a cookie's token, or None (an expired one is dropped)."""
        if not isinstance(token, str) or not token:
            return None
        match = None
        for known, session in list(self._sessions.items()):
            # every entry compared, in constant time: the lookup tells nothing by its timing
            if hmac.compare_digest(known.encode(), token.encode("utf-8", "replace")):
                match = session
        if match is None:
            return None
        now = self._clock()
        if match.expired(now):
            self._sessions.pop(match.token, None)
            return None
        match.last_used = now
        return match

    def end(self, session):
        self._sessions.pop(session.token, None)

    def _drop_expired(self, now):
        for token, session in list(self._sessions.items()):
            if session.expired(now):
                del self._sessions[token]

    @staticmethod
    def cookie(session):
        max_age = MAX_SECONDS if session is not None else 0
        value = session.token if session is not None else ""
        return ("%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d"
                % (COOKIE, value, max_age))
