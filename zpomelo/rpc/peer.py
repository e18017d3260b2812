"""Peer: the client side of one server connection (a DEALER and the three greenlets that own it).

- writer: the only greenlet that sends; sends everything queued so far as one frame (at most
  MAX_ENVELOPES_PER_FRAME per frame). An idle peer's writer wakes and sends in the same loop turn.
- reader: receives reply frames and hands the decoded envelopes to `on_replies(peer, replies)`.
- monitor: reads the DEALER's socket monitor; "up" on connect, "down" on disconnect, where it
  calls `on_disconnect(peer)` so pending calls fail fast instead of waiting for their deadline.

Self-connection: while a server is down, our reconnects to 127.0.0.1:P pick an ephemeral source
port, and when P is inside net.ipv4.ip_local_port_range the kernel can pick P itself. TCP's
simultaneous open then connects the socket to itself, ZMTP accepts DEALER-to-DEALER, and the
connection lives on: our calls come back to us, and the restarted server cannot bind P ("Address
already in use"). The monitor checks every new connection's two ends and drops a self-connection
at once (`self_connects` counts them), so the port is free again within one reconnect interval.
"""
import logging
import os
import socket

import gevent
import zmq
from gevent.event import Event
from zmq.utils.monitor import parse_monitor_message

from zpomelo.errors import ProtocolError
from zpomelo.rpc import security
from zpomelo.rpc.greenzmq import GreenSocket
from zpomelo.rpc.envelope import join_frame, unpack_replies
from zpomelo.rpc.server import MAX_ENVELOPES_PER_FRAME
from zpomelo.rpc.zsock import RECONNECT_IVL_MS, set_reconnect

logger = logging.getLogger(__name__)

CONNECTING = "connecting"  # never connected yet: sends queue in the DEALER
UP = "up"
DOWN = "down"  # was connected, lost it; the DEALER is reconnecting

# ZMTP heartbeats catch a peer that vanished without closing TCP (host down, cable cut).
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 3000

_MONITORED = zmq.EVENT_CONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED | zmq.EVENT_MONITOR_STOPPED


class Peer:
    def __init__(self, server_id, endpoint, context, identity, sndhwm, on_replies, on_disconnect, keys=None):
        self.server_id = server_id
        self.endpoint = endpoint
        self.state = CONNECTING
        self.outgoing = []  # packed envelopes waiting for the writer
        self.closed = False
        self.self_connects = 0
        self._on_replies = on_replies
        self._on_disconnect = on_disconnect
        self._wake = Event()

        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, identity)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, sndhwm)
        sock.setsockopt(zmq.RCVHWM, sndhwm)
        set_reconnect(sock)
        sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        security.secure_client(sock, keys)
        monitor_addr = "inproc://zpomelo-rpc-monitor-%s" % os.urandom(8).hex()
        monitor = sock.get_monitor_socket(_MONITORED, monitor_addr)
        try:
            sock.connect(endpoint)
        except zmq.ZMQError as exc:
            sock.disable_monitor()
            monitor.close(linger=0)
            sock.close(linger=0)
            raise ValueError("cannot connect to server %s at %r: %s" % (server_id, endpoint, exc)) from exc
        self._raw_socket = sock
        self._socket = GreenSocket(sock)
        self._monitor = GreenSocket(monitor)
        self._greenlets = [
            gevent.spawn(self._write_loop),
            gevent.spawn(self._read_loop),
            gevent.spawn(self._monitor_loop),
        ]

    def send(self, packed):
        """Queue one packed envelope for the writer (any greenlet)."""
        outgoing = self.outgoing
        outgoing.append(packed)
        if len(outgoing) == 1:
            self._wake.set()

    def _write_loop(self):
        send = self._socket.send
        wake = self._wake
        try:
            while True:
                if not self.outgoing:
                    wake.wait()
                    wake.clear()
                    continue
                batch, self.outgoing = self.outgoing, []
                if len(batch) <= MAX_ENVELOPES_PER_FRAME:
                    send(join_frame(batch))
                else:
                    for start in range(0, len(batch), MAX_ENVELOPES_PER_FRAME):
                        send(join_frame(batch[start : start + MAX_ENVELOPES_PER_FRAME]))
        except zmq.ZMQError:
            if not self.closed:
                raise

    def _read_loop(self):
        recv = self._socket.recv
        try:
            while True:
                self._handle_frame(recv())
        except zmq.ZMQError:
            if not self.closed:
                raise

    def _handle_frame(self, frame):
        try:
            replies = unpack_replies(frame)
        except ProtocolError as exc:
            logger.warning("rpc client dropped a reply frame from %s: %s", self.server_id, exc)
            return
        self._on_replies(self, replies)

    def _drain_replies(self):
        """Settle replies that arrived before the disconnect, without waiting (monitor greenlet)."""
        frame = self._socket.try_recv()
        while frame is not None:
            self._handle_frame(frame)
            frame = self._socket.try_recv()

    def _monitor_loop(self):
        recv = self._monitor.recv_multipart
        to_itself = False   # the current connection is one to ourselves, being dropped
        try:
            while True:
                message = parse_monitor_message(recv())
                event = message["event"]
                if event == zmq.EVENT_CONNECTED:
                    to_itself = _is_self_connection(message["value"])
                    if to_itself:
                        self._drop_self_connection()
                        continue
                if to_itself and event != zmq.EVENT_MONITOR_STOPPED:
                    continue    # its handshake and disconnect: the server was never there
                if event == zmq.EVENT_CONNECTED or event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    if self.state != UP:
                        logger.info("rpc connected to server %s at %s", self.server_id, self.endpoint)
                        self.state = UP
                elif event == zmq.EVENT_DISCONNECTED:
                    if self.state == UP:
                        logger.warning("rpc lost server %s at %s; reconnecting", self.server_id, self.endpoint)
                    self.state = DOWN
                    self._drain_replies()
                    self._on_disconnect(self)
                elif event == zmq.EVENT_MONITOR_STOPPED:
                    return
        except zmq.ZMQError:
            if not self.closed:
                raise

    def _drop_self_connection(self):
        """Disconnect the endpoint (closing the socket that holds the server's port) and connect
        again after one reconnect interval, from another source port."""
        self.self_connects += 1
        logger.warning("rpc connection to server %s at %s connected to itself (its source port is "
                       "the server's port, inside the ephemeral port range); dropped, reconnecting",
                       self.server_id, self.endpoint)
        try:
            self._raw_socket.disconnect(self.endpoint)
        except zmq.ZMQError:
            return
        gevent.spawn_later(RECONNECT_IVL_MS / 1000.0, self._reconnect)

    def _reconnect(self):
        if not self.closed:
            self._raw_socket.connect(self.endpoint)

    def close(self):
        """Stop the greenlets and close the sockets (unsent envelopes are discarded)."""
        if self.closed:
            return
        self.closed = True
        current = gevent.getcurrent()
        for greenlet in self._greenlets:
            if greenlet is not current:
                greenlet.kill(block=True, timeout=1)
        self._raw_socket.disable_monitor()
        self._monitor.close(linger=0)
        self._socket.close(linger=0)
        self.outgoing = []


def _is_self_connection(fd):
    """True when the TCP socket ``fd`` is connected to itself (same address and port both ends)."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:     # already closed by ZeroMQ: nothing to check
        return False
    try:
        return sock.getsockname() == sock.getpeername()
    except OSError:
        return False
    finally:
        sock.close()
