"""What the server sends a Client: packages read, handshake, messages, kicks, and the heartbeat.

A base of ``Client`` (connection.py), which owns the state and the sending side; everything here
runs in the client's reader greenlet (or its heartbeat greenlet) and must not block.
"""
import logging
import time

import gevent

from zpomelo.client.errors import ConnectionClosed, HandshakeError
from zpomelo.client.resume import _CLOSED, _INITED, _WORKING, is_push
from zpomelo.errors import BodyError, ProtocolError
from zpomelo.protocol import handshake, message, package

logger = logging.getLogger("zpomelo.client.connection")    # the Client's log, as before the split
_monotonic = time.monotonic


class Incoming:
    """Needs the Client's _connection, _codec, _pending, _pushes, _handshake_reply, resume,
    cache, _kick_handlers and _finish."""

    # ---- receiving ---------------------------------------------------------------------------

    def _read_loop(self):
        self._finish(self._connection.read(self._handle_packages))

    def _handle_packages(self, packages):
        for ptype, body in packages:
            if ptype == package.DATA:
                if self._state is _WORKING:
                    self._on_message(body)
            elif ptype == package.HEARTBEAT:
                pass                      # last_recv already moved; the server answers ours
            elif ptype == package.HANDSHAKE:
                if self._state is _INITED:
                    self._on_handshake(body)
            elif ptype == package.KICK:
                self._on_kick(body)
            else:
                logger.debug("%r: ignoring a package of type %d", self, ptype)
            if self._state is _CLOSED:
                return

    def _on_message(self, data):
        if self.resume is not None and is_push(data):
            self.resume.pushes += 1
        try:
            mtype, mid, route, body = self._codec.decode(data)
        except ProtocolError as exc:
            self._on_bad_message(exc)
            return
        if mtype == message.RESPONSE:
            self._pending.answer(mid, body)
        elif mtype == message.PUSH:
            self._pushes.deliver(route, body, self)
        else:
            logger.debug("%r: ignoring a message of type %d from the server", self, mtype)

    def _on_bad_message(self, exc):
        """A DATA package whose message does not decode. The package framing is intact, so only
        this message is lost: its request fails with the error, anything else is dropped."""
        self.bad_messages += 1
        msg_id = exc.msg_id if isinstance(exc, BodyError) else 0
        if not self._pending.fail(msg_id, exc):
            logger.warning("%r: dropping a message that does not decode: %s", self, exc)

    def _on_handshake(self, body):
        reply = handshake.parse_response(body)
        code = reply.get("code")
        if code != 200:
            self._handshake_reply.set_exception(HandshakeError(code, reply))
            self._finish("handshake refused with code %s" % code)
            return
        sys = self.cache.complete(reply.get("sys") or {})
        self._codec.apply_handshake(sys)
        self.handshake_sys = sys
        self.handshake_user = reply.get("user")
        resumed = reason = None
        if self.resume is not None:
            resumed, reason = self.resume.apply(sys.get("resume"))
        self._state = _WORKING
        self._reconnecting = False
        self.connected.set()
        self._enqueue(package.HANDSHAKE_ACK_PACKAGE)
        heartbeat = sys.get("heartbeat")
        if isinstance(heartbeat, (int, float)) and heartbeat > 0:
            self.heartbeat = heartbeat
            timeout = self.heartbeat_timeout or 2 * heartbeat
            self._heartbeater = gevent.spawn(self._heartbeat_loop, heartbeat, timeout)
        self._handshake_reply.set(reply)
        if resumed is not None:
            self._fire("resumed" if resumed else "session_lost", reason)

    def _on_kick(self, body):
        try:
            self.kicked_reason = handshake.parse_kick(body)
        except ProtocolError:
            self.kicked_reason = bytes(body).decode("utf-8", "replace")
        for fn in self._kick_handlers:
            try:
                fn(self.kicked_reason)
            except Exception:
                logger.exception("%r: kick handler failed", self)
        self._finish("kicked by the server: %s" % (self.kicked_reason,))

    # ---- timers ------------------------------------------------------------------------------

    def _heartbeat_loop(self, interval, timeout):
        next_beat = wake_at = _monotonic() + interval
        grace_from = None     # when this process was found late past the server's deadline
        while self._state is _WORKING:
            now = _monotonic()
            last_recv = self._connection.last_recv
            silent = now - last_recv
            if silent < timeout:
                grace_from = None
                deadline = last_recv + timeout
            else:
                # This process was late, not the server, when the server's bytes wait unread (a
                # process stalled past the deadline runs its timers before its reads:
                # netio.input_waiting) or this loop woke over half a timeout late (stalled
                # itself, it cannot tell whether the server went silent): one more period.
                if grace_from is None and (now - wake_at > timeout / 2
                                           or self._connection.input_waiting()):
                    grace_from = now
                if grace_from is None or now - grace_from >= timeout:
                    self._finish("heartbeat timeout: nothing from the server for %.3g s" % silent)
                    return
                deadline = grace_from + timeout
            if now >= next_beat:
                try:
                    self._enqueue(package.HEARTBEAT_PACKAGE)
                except ConnectionClosed:
                    return
                next_beat = now + interval
            wake_at = max(now, min(next_beat, deadline))
            gevent.sleep(wake_at - now)
