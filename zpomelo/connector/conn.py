"""Connection: one client's Pomelo state machine.

The transport subclasses (tcp.TcpConnection, ws.WsConnection) only unframe bytes and frame
writes; everything Pomelo-specific lives here and in the base class connector.handshaking (the
handshake and heartbeat steps, and the deadline they stop and arm). An idle connection holds no
greenlet: its socket's read watcher and its deadline timer call back in the hub
(connector.driving), which hands the connection to a reused worker greenlet (connector.workers)
to read, decode and run the frontend's code; the worker goes back to the pool once the socket has
nothing more to read. A TLS connection keeps one worker for its whole life (``serve``: an SSL
read may need a write, and bytes may wait inside the SSL layer where the watcher cannot see
them). Writes go out at once while the socket takes them, else through the writer greenlet of a
bounded queue (zpomelo.socket_writer).
"""
import logging
from time import monotonic

import gevent
from gevent import getcurrent

from zpomelo.connector import badinput, ratelimit
from zpomelo.connector.driving import (  # noqa: F401 - the states and deadlines are public here
    CLOSED, INITED, RECV_SIZE, WAIT_ACK, WORKING, Deadline, HandshakeTimeout, HeartbeatTimeout,
    State, _deadline_passed, _readable, start_deadline)
from zpomelo.connector.handshaking import Handshaking
from zpomelo.errors import CODE_RATE_LIMITED, BodyError, ProtocolError
from zpomelo.protocol import handshake
from zpomelo.protocol import message
from zpomelo.protocol.package import (
    DATA, HANDSHAKE, HANDSHAKE_ACK, HEARTBEAT, KICK, PackageDecoder)
from zpomelo.netio import make_receiver
from zpomelo.socket_writer import SocketWriter

logger = logging.getLogger(__name__)

_BODY_ERROR_JSON = b'{"code":500}'


class Connection(Handshaking):
    """One client socket.

    Public: ``id`` (sid, unique per Connector), ``address`` (host, port), ``transport``
    ("tcp" | "ws"), ``state``, ``close_reason``, ``send(package_bytes)``, ``kick(reason)``,
    ``close(reason)``. Frontends may keep their own data in ``session``.
    """

    transport = None

    def __init__(self, connector, sock, address, sid):
        config = connector.config
        self.id = sid
        self.address = address
        self.state = INITED
        self.close_reason = None
        self.session = None
        self.resumable = False      # the client asked for session resume (zpomelo.resume)
        self.client_left = False    # the client said goodbye: its session gets no resume window
        self.kicked = False         # kick() was called (a rate limit, the game): no window either
        self.handshake_extra = None  # more handshake reply sys keys, set by the frontend
        self._connector = connector
        self._frontend = connector.frontend
        self._config = config
        self._codec = config.codec
        codec = config.codec
        self._decode = None if codec is None else (
            codec.decode_lazy if connector.lazy_bodies else codec.decode)
        self._sock = sock
        self._decoder = PackageDecoder(config.max_body)
        self._reported = False      # frontend.on_connect accepted: on_close is owed once
        self._worker = None         # the greenlet serving this connection now (None while idle)
        self._deadline = None       # the handshake deadline, then the heartbeat deadline
        self._deadline_graced = False   # it passed once while this process was late
        self._deadline_due = None   # when the heartbeat deadline is due (monotonic)
        limits = getattr(config, "rate_limits", None)
        self._limiter = None
        if limits is not None and limits.enabled:
            now = monotonic()
            self._limiter = limits.limiter(now, full=not connector.recent_kicks.recent(address[0], now))
        frame, frame_batch = self._framing()
        self._out = SocketWriter(sock, self._on_send_error, self._on_write_overflow, frame,
                                 frame_batch, max_bytes=config.write_queue_limit)
        # send(package_bytes) -> bool: queue whole packages (or write them at once while the
        # socket is idle); never blocks. False when the connection is closed or its queue
        # overflowed (then it is closed: a client that cannot keep up must not hold unbounded
        # memory). Bound here, not wrapped, because every answer and push passes through it.
        self.send = self._out.write

    def __repr__(self):
        return "<%s sid=%s %s:%s %s>" % (type(self).__name__, self.id, self.address[0],
                                         self.address[1], self.state.name)

    # ---- running -------------------------------------------------------------------------

    def start(self, initial, handshake_deadline=None):
        """Begin in the calling worker greenlet (connector.workers); returns once the connection
        is idle (its read watcher armed) or closed. ``initial`` holds bytes already read while
        sniffing; ``handshake_deadline`` is the running timer started at accept, stopped once the
        client's ACK arrives."""
        self._worker = getcurrent()
        try:
            try:
                reason = self._begin(initial, handshake_deadline)
            except BaseException as exc:    # noqa: B036 - GreenletExit and Deadline end it too
                reason = self._reason_for(exc)
            if reason is None:
                if self.state is not CLOSED:
                    self._watch()
                return
            try:
                self.close(reason)
            except Deadline:    # a deadline thrown in before close() stopped its timer
                pass
        finally:
            self._worker = None

    def serve(self, initial, handshake_deadline=None):
        """Run the connection in the calling greenlet until it closes (TLS connections; a
        greenlet that blocks in its reads for the connection's whole life)."""
        self._worker = getcurrent()
        reason = "closed"
        try:
            reason = self._begin(initial, handshake_deadline)
            if reason is None and self.state is not CLOSED:
                reason = self._read_loop(b"")
        except BaseException as exc:    # noqa: B036 - GreenletExit and Deadline end it too
            reason = self._reason_for(exc)
        finally:
            self.close(reason or "closed")
            try:
                self._out.wait(self._config.close_timeout + 1.0)
            except Deadline:  # a deadline callback already queued when close() stopped its timer
                pass
            self._out.close(flush=False)

    def _begin(self, initial, handshake_deadline):
        """Ask the frontend, then feed the sniffed bytes: a close reason, or None to go on."""
        if handshake_deadline is not None:
            handshake_deadline.callback = _deadline_passed   # it ends this connection from now on
            handshake_deadline.args = (self, HandshakeTimeout)
        self._deadline = handshake_deadline
        try:
            accepted = self._frontend.on_connect(self)
        except Exception:
            logger.exception("frontend.on_connect failed for %r", self)
            accepted = False
        if not accepted:
            return "refused by the frontend"
        self._reported = True
        if initial:
            return self._feed(initial)
        return None

    def _reason_for(self, exc):
        """The close reason for an exception that ended this connection's reads."""
        if isinstance(exc, Deadline):
            return exc.reason
        if isinstance(exc, ProtocolError):
            self.note_bad_input(badinput.MALFORMED_PACKAGE, exc)
            self._on_protocol_error(exc)
            return "protocol error: %s" % exc
        if isinstance(exc, OSError):
            return "socket error: %s" % (exc.strerror or exc)
        if isinstance(exc, gevent.GreenletExit):
            return "server stopping"
        logger.error("%r failed", self, exc_info=exc)
        return "internal error: %s" % (exc,)

    def _watch(self):
        """Arm the socket's read watcher: the next bytes are served by a worker."""
        event = self._sock._read_event
        if event is None:       # the socket was closed under us
            self.close("socket error: the socket is closed")
            return
        event.start(_readable, self)

    def _unwatch(self):
        event = getattr(self._sock, "_read_event", None)
        if event is not None and event.callback is _readable:
            event.stop()

    def _read_loop(self, data):
        """Blocking reads in the calling greenlet (``serve``) until a close reason."""
        recv = make_receiver(self._sock)
        feed = self._feed
        while True:
            if data:
                reason = feed(data)
                if reason is not None:
                    return reason
                if self.state is CLOSED:
                    return self.close_reason
            data = recv(RECV_SIZE)
            if not data:
                return "client closed"

    def _feed(self, data):
        """Transport hook: handle bytes read from the socket; a close reason, or None."""
        raise NotImplementedError

    def _on_protocol_error(self, exc):
        """Transport hook: e.g. a WebSocket close frame with a status code."""

    def handle_bytes(self, data):
        """Feed client bytes (a TCP read or a WebSocket message) through the state machine.

        Answers produced while one read is handled are held (corked) and written together
        afterwards: one send for the whole batch.
        """
        packages = self._decoder.feed(data)
        if len(packages) == 1:
            self._handle_package(*packages[0])
            return
        out = self._out
        out.cork()
        try:
            for ptype, body in packages:
                self._handle_package(ptype, body)
                if self.state is CLOSED:
                    break
        finally:
            out.uncork()

    def _handle_package(self, ptype, body):
        if ptype == DATA:
            if self.state is WORKING:
                self._on_data(body)
        elif ptype == HEARTBEAT:
            if self.state is WORKING:
                self._on_heartbeat()
        elif ptype == HANDSHAKE:
            if self.state is INITED:
                self._on_handshake(body)
        elif ptype == HANDSHAKE_ACK:
            if self.state is WAIT_ACK:
                self._on_ack()
        elif ptype == KICK and self.resumable:
            # a resume client's goodbye (docs/protocol.md "Session resume"): close, no window
            self.client_left = True
            self.close("client left")
        # Anything else (a KICK from a stock client, a package in the wrong state) is ignored,
        # as Pomelo does.

    # ---- the Pomelo state machine --------------------------------------------------------

    def _on_data(self, body):
        limiter = self._limiter
        if limiter is not None:
            now = monotonic()
            kind = limiter.admit(len(body), now)
            if kind is not None:
                self._refuse(body, kind, now)
                return
        try:
            mtype, msg_id, route, obj = self._decode(body)
        except BodyError as exc:
            self.note_bad_input(badinput.BAD_BODY, exc)
            if exc.msg_id:
                data = self._error_response(exc.msg_id, exc.route)
                answer_in_order = getattr(self._frontend, "answer_in_order", None)
                if answer_in_order is not None:
                    answer_in_order(self, exc.msg_id, data)
                else:
                    self.send(data)
            return
        except ProtocolError as exc:
            self.note_bad_input(badinput.BAD_MESSAGE, exc)
            return
        if mtype > message.NOTIFY:  # a RESPONSE or PUSH has no business coming from a client
            self.note_bad_input(badinput.SERVER_ONLY_MESSAGE, "message type %s" % mtype)
            return
        try:
            self._frontend.on_request(self, msg_id, route, obj)
        except Exception:
            logger.exception("frontend.on_request failed for %r route %s", self, route)

    def _refuse(self, body, kind, now):
        """A message over the rate limit: never decoded past its header, never handled; a request
        gets CODE_RATE_LIMITED, a notify is dropped; a connection that keeps at it is kicked."""
        limiter = self._limiter
        counts = self._connector.rate_limited
        counts[kind] += 1
        try:
            mtype, msg_id, route = self._codec.peek(body)
        except ProtocolError as exc:
            self.note_bad_input(badinput.BAD_MESSAGE, exc)
            msg_id = 0
        if msg_id and mtype == message.REQUEST:
            data = self._encode_error(msg_id, route, {
                "code": CODE_RATE_LIMITED, "error": limiter.explain(kind, len(body))})
            answer_in_order = getattr(self._frontend, "answer_in_order", None)
            if answer_in_order is not None:
                answer_in_order(self, msg_id, data)
            else:
                self.send(data)
        if limiter.note_refusal(now):
            counts[ratelimit.KICKED] += 1
            self._connector.recent_kicks.note(self.address[0], now)
            logger.warning("%r kicked: %d messages over its rate limit within %gs",
                           self, limiter.refused, limiter.limits.kick_window)
            self.kick("rate limit exceeded")

    def note_bad_input(self, kind, detail):
        """Count bad input from this client (see connector.badinput); logged rate-limited."""
        self._connector.bad_input.note(kind, "%s:%s" % (self.address[0], self.address[1]), detail)

    def _error_response(self, msg_id, route):
        return self._encode_error(msg_id, route, {"code": 500})

    def _encode_error(self, msg_id, route, body):
        try:
            return self._codec.encode_response(msg_id, route, body)
        except Exception:  # e.g. a protobuf route whose message cannot carry the error body
            return self._codec.encode_response_raw(msg_id, _BODY_ERROR_JSON)

    # ---- writing -------------------------------------------------------------------------

    def _framing(self):
        """Transport hook: (frame(package), frame_batch(packages)) for the writer; None, None
        writes packages as they are."""
        return None, None

    def _closing_bytes(self):
        """Transport hook: last bytes before a graceful close (a WebSocket close frame)."""
        return b""

    def _on_send_error(self, reason):
        self.close(reason, flush=False)

    def _on_write_overflow(self):
        logger.warning("%r: write queue over %d bytes, closing the slow client",
                       self, self._config.write_queue_limit)
        self.close("write queue overflow", flush=False)

    # ---- closing -------------------------------------------------------------------------

    def kick(self, reason=""):
        """Send a KICK package with ``{"reason": reason}`` and close once it is written."""
        if self.state is CLOSED:
            return
        self.kicked = True
        self.send(handshake.encode_kick(reason))
        self.close("kicked: %s" % (reason,))

    def close(self, reason="closed", flush=True):
        """Close once: queued packages are still written (within close_timeout) unless ``flush``
        is False; frontend.on_close(conn, reason) is reported exactly once."""
        if self.state is CLOSED:
            return
        self.state = CLOSED
        self.close_reason = reason
        self._stop_deadline()
        self._unwatch()     # before the writer closes the socket (its watcher must be idle then)
        self._out.close(flush, self._config.close_timeout, self._closing_bytes())
        self._connector._forget(self)
        if self._reported:
            try:
                self._frontend.on_close(self, reason)
            except Exception:
                logger.exception("frontend.on_close failed for %r", self)
