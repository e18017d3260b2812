"""The master's port: one ROUTER socket the servers and the CLI talk to (wire.py is its format).

Every frame is opened with the cluster secret (wire.Sealer) before anything looks at it; with
CURVE keys the socket is also a CURVE server (rpc/security.py). A frame that fails is logged once
per peer address and kind, answered with a fixed error, and changes nothing. What an opened
message means is the Master's business (master.py); this module only moves sealed frames and
matches the answers of commands sent to servers.
"""
import itertools
import logging
import socket
import time

import gevent
import gevent.event
import zmq

from zpomelo.errors import ZpomeloError
from zpomelo.master import wire
from zpomelo.rpc import security
from zpomelo.rpc.greenzmq import GreenSocket
from zpomelo.rpc.zsock import bound_port

logger = logging.getLogger("zpomelo.master.master")     # the master's log, as before the split

BIND_RETRY = 2.0            # a master restarted at once may find its old port busy for a moment


class MasterPort:
    """``bind``, then ``read_loop(dispatch)`` in a greenlet; ``send`` and ``command`` from anywhere.

    With masterHA (``ha``), the message kinds in ``wire.EPOCH_AT`` carry the leader's epoch and
    are sent only while this master may act."""

    def __init__(self, record, keys, context, ha, refusals):
        self.record = record
        self.keys = keys
        self.ha = ha
        self.refusals = refusals
        self.port = None
        self._sealer = wire.Sealer(security.require_secret(keys), wire.FROM_MASTER,
                                   wire.TO_MASTER)
        self._context = context
        self._socket = None
        self._req_ids = itertools.count(1)
        self._pending = {}                      # req id -> AsyncResult

    def bind(self, previous):
        """Bind master.json's port (or, for port 0, the last run's port in ``previous``, the
        runstate entry, so the servers of that run find us again; else any free port)."""
        sock = self._context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        security.secure_server(sock, self.keys)
        port = self.record.port
        if port and _listening(self.record.host, port):
            # a dual-stack wildcard listener would not stop our bind, yet clients would be split
            sock.close()
            raise ZpomeloError(
                "the master cannot use %s:%d: another program is already listening there (is "
                "another cluster running? see zpomelo list -P %d); change the port in "
                "config/master.json" % (self.record.host, port, port))
        if port == 0 and previous.get("host") == self.record.host and previous.get("port"):
            port = int(previous["port"])    # servers of the last run still talk to that port
        try:
            bind_retrying(sock, "tcp://%s:%d" % (self.record.host, port),
                          BIND_RETRY if port != self.record.port else 0)
        except zmq.ZMQError as e:
            if port == self.record.port:
                sock.close()
                raise ZpomeloError(
                    "the master cannot bind %s:%d: %s; is another master running? (zpomelo list"
                    " -P %d), or change the port in config/master.json"
                    % (self.record.host, port, e, port)) from None
            sock.bind("tcp://%s:0" % self.record.host)
        self.port = bound_port(sock)
        self._socket = GreenSocket(sock)
        return self.port

    def read_loop(self, dispatch):
        """Open every frame; ``dispatch(identity, msg, address)`` the good ones, answer the
        rest with an error. Returns when the socket closes."""
        while True:
            try:
                parts = self._socket.recv_multipart_frames()
            except zmq.ZMQError:
                return
            if len(parts) != 2:
                continue        # not [identity, frame]: nothing to answer
            identity, frame = parts[0].bytes, parts[1]
            address = frame.get("Peer-Address")
            try:
                msg = self._sealer.open(frame.bytes)
            except wire.Unauthenticated as e:
                self.refusals.refused(address, _claimed_kind(frame.bytes), str(e))
                self._send_raw(identity, wire.pack(wire.ERROR, wire.UNAUTHENTICATED_MESSAGE))
                continue
            if msg is None:
                logger.warning("dropped a malformed message on the master port from %s",
                               address)
                self.send(identity, wire.ERROR, "malformed request: expected a msgpack array")
                continue
            try:
                dispatch(identity, msg, address)
            except Exception:
                logger.exception("failed to handle %r", msg[0])

    def input_waiting(self):
        """Whether a message waits unread on the port (GreenSocket.input_waiting)."""
        return self._socket is not None and self._socket.input_waiting()

    def send(self, identity, *parts):
        if self.ha is not None and parts[0] in wire.EPOCH_AT:
            if not self.ha.may_act():
                logger.debug("not acting (no ZooKeeper lease): %r not sent", parts[0])
                return
            parts = wire.with_epoch(parts, self.ha.epoch)
        self._send_raw(identity, self._sealer.seal(*parts))

    def _send_raw(self, identity, frame):
        if self._socket is None:
            return
        try:
            self._socket.try_send_multipart([identity, frame])
        except zmq.ZMQError as e:
            logger.debug("send to %r failed: %s", identity, e)

    def command(self, identity, sid, name, args, timeout):
        """Send command ``name`` to server ``sid`` (at ``identity``) and wait for its result."""
        req_id = next(self._req_ids)
        result = gevent.event.AsyncResult()
        self._pending[req_id] = result
        self.send(identity, wire.CMD, req_id, name, args)
        try:
            return result.get(timeout=timeout)
        except gevent.Timeout:
            raise ZpomeloError("server %s did not answer %r within %.1f s"
                               % (sid, name, timeout)) from None
        finally:
            self._pending.pop(req_id, None)

    def command_async(self, identity, name, args):
        """A command whose answer nobody waits for (request id 0)."""
        self.send(identity, wire.CMD, 0, name, args)

    def on_result(self, msg):
        """A server's RESULT [kind, req id, ok, value]: wakes the command waiting for it."""
        pending = self._pending.pop(msg[1], None)
        if pending is not None:
            if msg[2]:
                pending.set(msg[3])
            else:
                pending.set_exception(ZpomeloError(str(msg[3])))

    def close(self):
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None


def bind_retrying(sock, endpoint, retry_for):
    deadline = time.monotonic() + retry_for
    while True:
        try:
            return sock.bind(endpoint)
        except zmq.ZMQError:
            if time.monotonic() >= deadline:
                raise
            gevent.sleep(0.05)


def _listening(host, port):
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _claimed_kind(frame):
    """What an unauthenticated frame claims to be, for the refusal log (never acted upon)."""
    body = frame[wire.HEADER_SIZE:] if frame.startswith(wire.MAGIC) else frame
    msg = wire.unpack(body)
    kind = msg[0] if msg else None
    known = (wire.REGISTER, wire.UNREGISTER, wire.HEARTBEAT, wire.RESULT, wire.ADMIN)
    return "an unauthenticated %r" % kind if kind in known else "an unauthenticated message"
