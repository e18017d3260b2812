"""A Connection's handshake and heartbeat steps, and the deadline they stop and arm.

A base of ``Connection`` (conn.py), which owns the state and the per-message steps: the client's
handshake request is parsed and put to the frontend, answered (the common 200 reply encoded once
per connector and client cache state), and its ACK ends the handshake deadline and starts the
heartbeat one, which each heartbeat re-arms.
"""
import logging
from time import monotonic

from zpomelo.connector import badinput
from zpomelo.connector.driving import (
    INITED, WAIT_ACK, WORKING, HeartbeatTimeout, _deadline_passed, start_deadline)
from zpomelo.errors import ProtocolError
from zpomelo.protocol import handshake
from zpomelo.protocol.package import HEARTBEAT_PACKAGE

logger = logging.getLogger("zpomelo.connector.conn")    # the Connection's log, as before the split


class Handshaking:
    """Needs the Connection's state, send, close, note_bad_input, handshake_extra, resumable,
    _frontend, _connector, _config, _codec, _deadline, _deadline_graced and _deadline_due."""

    def _on_handshake(self, body):
        try:
            client_sys, user = handshake.parse_request(body)
        except ProtocolError as exc:
            self.note_bad_input(badinput.BAD_HANDSHAKE, exc)
            self.send(handshake.encode_response(500))
            self.close("bad handshake: %s" % exc)
            return
        try:
            code, reply_user = self._frontend.on_handshake(self, client_sys, user)
        except Exception:
            logger.exception("frontend.on_handshake failed for %r", self)
            code, reply_user = 500, None
        if self.state is not INITED:  # the frontend closed or kicked it meanwhile
            return
        if code != 200:
            self.send(handshake.encode_response(code))
            self.close("handshake refused with code %s" % code)
            return
        try:
            reply = self._handshake_reply(client_sys, reply_user)
        except Exception:
            logger.exception("building the handshake reply failed for %r", self)
            self.send(handshake.encode_response(500))
            self.close("handshake reply failed")
            return
        self.state = WAIT_ACK
        self.send(reply)

    def _handshake_reply(self, client_sys, reply_user):
        """The 200 reply package. The common one (no user data, no extra sys keys) is encoded
        once per connector and client cache state (``codec.handshake_sys_key``): with a route
        dictionary it is the largest JSON the connector writes, a sixth of a connect's CPU."""
        if reply_user is None and not self.handshake_extra:
            codec = self._codec
            key_of = None if codec is None else getattr(codec, "handshake_sys_key", None)
            if codec is None or key_of is not None:
                key = None if codec is None else key_of(client_sys)
                replies = self._connector.handshake_replies
                reply = replies.get(key)
                if reply is None:
                    reply = replies[key] = handshake.encode_response(200, self._reply_sys(client_sys))
                return reply
        return handshake.encode_response(200, self._reply_sys(client_sys), reply_user)

    def _reply_sys(self, client_sys):
        reply = {}
        if self._config.heartbeat is not None:
            reply["heartbeat"] = self._config.heartbeat
        codec = self._codec
        if codec is not None:
            helper = getattr(codec, "handshake_sys", None)
            if helper is not None:
                reply.update(helper(client_sys))
            else:
                dictionary = getattr(codec, "dictionary", None)
                if dictionary is not None:
                    reply.update(dictionary.handshake_sys(client_sys.get("dictVersion")))
                protobuf = getattr(codec, "protobuf", None)
                if protobuf is not None:
                    reply.update(protobuf.handshake_sys(client_sys.get("protoVersion")))
        if self.handshake_extra:
            reply.update(self.handshake_extra)
        return reply

    def _on_ack(self):
        self.state = WORKING
        self._stop_deadline()
        self.send(HEARTBEAT_PACKAGE)
        self._arm_heartbeat_deadline()
        if self.resumable:
            try:
                self._frontend.on_ready(self)
            except Exception:
                logger.exception("frontend.on_ready failed for %r", self)

    def _on_heartbeat(self):
        self.send(HEARTBEAT_PACKAGE)
        self._arm_heartbeat_deadline()

    def _arm_heartbeat_deadline(self):
        seconds = self._config.heartbeat_timeout
        if seconds is None:
            return
        timer = self._deadline
        self._deadline_graced = False
        self._deadline_due = monotonic() + seconds
        if timer is None:
            self._deadline = start_deadline(seconds, HeartbeatTimeout, self)
        else:
            timer.again(_deadline_passed, self, HeartbeatTimeout)

    def _stop_deadline(self):
        timer = self._deadline
        self._deadline_due = None
        if timer is not None:
            self._deadline = None
            timer.stop()
            timer.close()
