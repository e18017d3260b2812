"""What a resuming client remembers between connections (docs/protocol.md "Session resume").

The server numbers the pushes of a resumable session 1, 2, ...; the wire carries no numbers, so
the client counts the PUSH messages it has read (``pushes``). On a reconnect it sends its token
and that count; the server replays the pushes after it, or refuses (a fresh session).
"""
import logging
import random
import time

import gevent
from gevent.event import AsyncResult

from zpomelo.client.errors import ConnectionClosed
from zpomelo.protocol import message

logger = logging.getLogger(__name__)
_monotonic = time.monotonic
# the Client's states (connection.py)
_INITED, _WORKING, _RESUMING, _CLOSED = "inited", "working", "resuming", "closed"

# message flag byte: type in bits 1..3 (protocol/message.py)
_PUSH_FLAG = message.PUSH << 1
_TYPE_BITS = 0x7 << 1


def is_push(data):
    """Whether a DATA package body is a PUSH message (counted even when it does not decode)."""
    return len(data) > 0 and data[0] & _TYPE_BITS == _PUSH_FLAG


class ResumeTicket:
    """The token of the current session, its window, and the pushes read on it."""

    __slots__ = ("token", "window", "pushes")

    def __init__(self):
        self.token = None
        self.window = 0
        self.pushes = 0

    def request(self):
        """The handshake's ``sys.resume``: ask for a token, or resume with the one we hold."""
        if self.token is None:
            return {}
        return {"token": self.token, "pushes": self.pushes}

    def apply(self, reply):
        """The server's ``sys.resume`` (None: this frontend does not resume). Returns
        (resumed, reason): resumed is None when no resume was asked for or offered."""
        asked = self.token is not None
        if not isinstance(reply, dict) or not isinstance(reply.get("token"), str):
            self.token, self.window, self.pushes = None, 0, 0
            return (False if asked else None), "the server does not resume sessions"
        resumed = reply.get("resumed") is True
        if not resumed:
            self.pushes = 0
        self.token = reply["token"]
        window = reply.get("window")
        self.window = window if isinstance(window, (int, float)) and window > 0 else 0
        if not asked:
            return None, None
        return resumed, reply.get("reason")


def backoff(first=0.05, most=2.0):
    """Delays between reconnect attempts: doubling from ``first`` up to ``most``, with jitter
    (so a frontend's clients that dropped together do not all come back in the same tick)."""
    delay = first
    while True:
        yield delay * (0.5 + random.random() / 2)
        delay = min(delay * 2, most)


class Reconnecting:
    """The reconnect half of zpomelo.client.Client (a mixin: it uses the Client's state)."""

    def on_drop(self, fn):
        """Resume: `fn(reason)` when the connection is lost and reconnecting starts."""
        self._resume_handlers["drop"].append(fn)

    def on_resumed(self, fn):
        """Resume: `fn(None)` when a reconnect got the session back (missed pushes follow)."""
        self._resume_handlers["resumed"].append(fn)

    def on_session_lost(self, fn):
        """Resume: `fn(reason)` when a reconnect got a fresh session (log in again)."""
        self._resume_handlers["session_lost"].append(fn)

    def wait_connected(self, timeout=None):
        """Wait until the connection works (after a reconnect); True when it does."""
        self.connected.wait(timeout)
        return self._state is _WORKING

    def _fire(self, kind, reason):
        for fn in self._resume_handlers[kind]:
            try:
                fn(reason)
            except Exception:
                logger.exception("%r: %s handler failed", self, kind)

    def _stop_connection(self):
        current = gevent.getcurrent()
        for greenlet in (self._reader, self._heartbeater):
            if greenlet is not None and greenlet is not current:
                greenlet.kill(block=False)
        if self._connection is not None:
            self._connection.close()

    def _lose(self, reason):
        """The connection is gone but the session may wait on the server: reconnect."""
        self._state = _RESUMING
        self.connected.clear()
        self.close_reason = reason
        text = "connection to %s:%s lost (%s); the request may or may not have run" % (
            self.host, self.port, reason)
        self._pending.fail_all(lambda: ConnectionClosed(text, reason))
        self._pending.reopen()
        self._stop_connection()
        logger.info("%r: connection lost (%s); reconnecting to resume the session", self, reason)
        self._fire("drop", reason)
        self._reconnector = gevent.spawn(self._reconnect_loop)

    def _end_attempt(self, reason):
        self.close_reason = reason
        if not self._handshake_reply.ready():
            self._handshake_reply.set_exception(ConnectionClosed(reason, reason))
        self._stop_connection()

    def _reconnect_loop(self):
        limit = self.reconnect_for if self.reconnect_for is not None else self.resume.window + 10.0
        deadline = _monotonic() + limit
        delays = backoff()
        while self._state is not _CLOSED and not self._leaving:
            remaining = deadline - _monotonic()
            if remaining <= 0:
                break
            self._reconnecting = True
            self._state = _INITED
            self._handshake_reply = AsyncResult()
            self._connection = None
            try:
                self._open_once(min(5.0, remaining))
                self.reconnects += 1
                return
            except gevent.GreenletExit:
                raise
            except Exception as exc:
                logger.debug("%r: reconnect attempt failed: %s", self, exc)
                self._end_attempt(str(exc))
            self._state = _RESUMING
            gevent.sleep(next(delays))
        self._reconnecting = False
        self._state = _RESUMING
        self._finish("could not reconnect within %.3g s (last: %s)" % (limit, self.close_reason))

