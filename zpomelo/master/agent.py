"""The server side of the master: registers a server, keeps its membership, answers commands.

Runs inside the server's gevent loop (a GreenSocket, like RPC and the bus). Every frame is
sealed with the cluster secret (wire.Sealer) both ways; with CURVE keys the DEALER is also a CURVE
client of the master. It heartbeats the master every second; a master
that does not know the server (it was restarted) answers the heartbeat with "reregister", and the
agent registers again, so a restarted master adopts running servers. While the master is away
the agent keeps trying quietly and the server keeps its membership and keeps serving.

With masterHA (``epoch`` given; see discovery.py) the agent follows the leader ZooKeeper names
(``follow``: reconnect and register there) and refuses any master message whose epoch is older
than the newest it knows, so a master that lost its leadership cannot command this server.
"""
import logging
import time

import gevent
import zmq

from zpomelo.errors import ZpomeloError
from zpomelo.master import wire
from zpomelo.rpc import security
from zpomelo.rpc.greenzmq import GreenSocket
from zpomelo.rpc.zsock import set_reconnect

logger = logging.getLogger(__name__)

REGISTER_RETRY = 0.25       # seconds between register attempts while the master is silent
CLOSE_LINGER_MS = 500       # time left to deliver "unregister" when closing


class MasterAgent:
    def __init__(self, master_endpoint, record, on_add, on_remove, on_command,
                 heartbeat_interval=1.0, context=None, epoch=None, keys=None):
        """keys: the project's ClusterKeys (rpc/security.py load_keys); the secret is required."""
        self.master_endpoint = master_endpoint
        self.epoch = epoch          # masterHA: the newest master epoch known; None without HA
        self.refused = 0            # master messages refused for a stale epoch
        self._close_callbacks = []
        self._registrar = None
        self.record = dict(record)
        self.server_id = self.record["id"]
        self.members = {}           # server id -> record, as last told by the master
        self._on_add = on_add
        self._on_remove = on_remove
        self._on_command = on_command
        self._heartbeat_interval = heartbeat_interval
        self._context = context or zmq.Context.instance()
        if keys is None:
            raise ZpomeloError("server %s: MasterAgent needs the project's keys "
                               "(zpomelo.rpc.security.load_keys(base_dir))" % self.server_id)
        self._keys = keys
        self._sealer = wire.Sealer(security.require_secret(keys), wire.TO_MASTER,
                                   wire.FROM_MASTER)
        self._refusals = security.RefusalLog(logger)
        self._socket = None
        self._greenlets = []
        self._after_start_all_done = False
        self._stopped = False
        self._registered = False

    # ------------------------------------------------------------------ lifecycle

    def _connect(self):
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)     # never queue for a master that is not there
        set_reconnect(sock)
        security.secure_client(sock, self._keys)
        sock.connect(self.master_endpoint)
        self._socket = GreenSocket(sock)
        return self._socket

    def start(self, timeout=10):
        """Register and return the membership (every live server, self included)."""
        sock = self._connect()
        deadline = time.monotonic() + timeout
        members = None
        while members is None:
            left = deadline - time.monotonic()
            if left <= 0:
                self._close(linger=0)
                raise ZpomeloError(
                    "server %s: the master at %s did not answer within %.1f s; is it running "
                    "(zpomelo start), and is --master right?"
                    % (self.server_id, self.master_endpoint, timeout))
            self._send(wire.REGISTER, self.record)
            frame = None
            with gevent.Timeout(min(REGISTER_RETRY, left), False):
                frame = sock.recv()
            if frame is None:
                continue
            msg = self._open(frame)
            if msg and msg[0] == wire.WELCOME and len(msg) >= 2 and self._current(msg):
                members = msg[1]
            elif msg is None and wire.unpack(frame) == [wire.ERROR, wire.UNAUTHENTICATED_MESSAGE]:
                self._close(linger=0)
                raise ZpomeloError("server %s: the master at %s refused our registration: %s"
                                   % (self.server_id, self.master_endpoint,
                                      wire.UNAUTHENTICATED_MESSAGE))
            # anything else before the welcome (a stale command) is dropped
        self.members = {m["id"]: m for m in members}
        logger.info("server %s registered with the master at %s (%d servers)",
                    self.server_id, self.master_endpoint, len(members))
        self._greenlets = [gevent.spawn(self._read_loop), gevent.spawn(self._heartbeat_loop)]
        return list(members)

    def stop(self):
        """Unregister (a graceful stop: the master will not restart this server) and close."""
        if self._stopped:
            return
        self._stopped = True
        if self._socket is not None:
            self._send(wire.UNREGISTER, self.server_id)
        current = gevent.getcurrent()
        gevent.killall([g for g in self._greenlets + [self._registrar]
                        if g is not None and g is not current])
        self._close(linger=CLOSE_LINGER_MS)
        for callback in self._close_callbacks:
            callback()

    def on_close(self, callback):
        """callback() runs when the agent stops (the ZooKeeper follower closes with it)."""
        self._close_callbacks.append(callback)

    # ------------------------------------------------------------------ masterHA

    def follow(self, endpoint, epoch):
        """masterHA: the leader is now at endpoint with epoch; move there and register.

        Called from the ZooKeeper watch: returns at once, the move runs in a greenlet."""
        if self._stopped or (self.epoch is not None and epoch < self.epoch):
            return
        self.epoch = epoch
        if endpoint == self.master_endpoint and self._socket is not None:
            return
        logger.info("server %s: following the master at %s (epoch %d)", self.server_id,
                    endpoint, epoch)
        self.master_endpoint = endpoint
        reader = self._greenlets[0] if self._greenlets else None
        if reader is not None:
            reader.kill()
        self._close(linger=0)
        self._connect()
        if self._greenlets:
            self._greenlets[0] = gevent.spawn(self._read_loop)
        self._registered = False
        if self._registrar is None or self._registrar.dead:
            self._registrar = gevent.spawn(self._register_until_welcome)

    def _register_until_welcome(self):
        """After a move to a new leader: register until it welcomes us."""
        while not self._stopped and not self._registered:
            self._send(wire.REGISTER, self.record)
            gevent.sleep(REGISTER_RETRY)

    def _current(self, msg):
        """masterHA: False (and the message refused) when it comes from an older master."""
        if self.epoch is None:
            return True
        epoch = wire.epoch_of(msg)
        if epoch is not None and epoch >= self.epoch:
            self.epoch = epoch
            return True
        self.refused += 1
        logger.warning("server %s: refused %r from a master with epoch %s: the current master's "
                       "epoch is %d", self.server_id, msg[0], epoch, self.epoch)
        if msg[0] == wire.CMD and len(msg) > 1 and msg[1]:
            self._send(wire.RESULT, msg[1], False,
                       "refused: this master's epoch %s is older than the current one (%d)"
                       % (epoch, self.epoch))
        return False

    def _close(self, linger):
        if self._socket is not None:
            self._socket.close(linger=linger)
            self._socket = None

    def _send(self, *parts):
        if self._socket is None:
            return False
        try:
            # False when there is no connection to the master right now: dropped, retried later
            return self._socket.try_send_multipart(
                (self._sealer.seal(*wire.with_epoch(parts, self.epoch)),))
        except zmq.ZMQError as e:
            logger.debug("server %s: send to master failed: %s", self.server_id, e)
            return False

    # ------------------------------------------------------------------ loops

    def _heartbeat_loop(self):
        while True:
            gevent.sleep(self._heartbeat_interval)
            self._send(wire.HEARTBEAT, self.server_id)

    def _read_loop(self):
        while True:
            try:
                frame = self._socket.recv()
            except zmq.ZMQError as e:
                if self._stopped:
                    return
                logger.warning("server %s: master socket failed: %s", self.server_id, e)
                return
            msg = self._open(frame)
            if msg is None:
                continue
            try:
                self._dispatch(msg)
            except Exception:
                logger.exception("server %s: failed to handle %r from the master",
                                 self.server_id, msg[0])

    def _open(self, frame):
        """The master's message, or None (refusal logged) when it is not authentic or malformed."""
        try:
            msg = self._sealer.open(frame)
        except wire.Unauthenticated as e:
            if wire.unpack(frame) == [wire.ERROR, wire.UNAUTHENTICATED_MESSAGE]:
                e = "the master says: " + wire.UNAUTHENTICATED_MESSAGE
            self._refusals.refused(self.master_endpoint, "a message from the master", str(e))
            return None
        if msg is None:
            logger.warning("server %s: dropped a malformed message from the master",
                           self.server_id)
        return msg

    def _dispatch(self, msg):
        kind = msg[0]
        if not self._current(msg):
            return
        if kind == wire.ADD:
            self._apply_add(msg[1])
        elif kind == wire.REMOVE:
            self._apply_remove(msg[1])
        elif kind == wire.SYNC:
            self._apply_sync(msg[1])
        elif kind == wire.CMD:
            gevent.spawn(self._run_command, msg[1], msg[2], msg[3] if len(msg) > 3 else None)
        elif kind == wire.REREGISTER:
            logger.info("server %s: the master asks to register again (it restarted?)",
                        self.server_id)
            self._send(wire.REGISTER, self.record)
        elif kind == wire.WELCOME:
            self._registered = True
            # the answer to a re-registration: authoritative only once the master has settled
            if len(msg) > 2 and msg[2]:
                self._apply_sync(msg[1])
            else:
                for record in msg[1]:
                    self._apply_add(record)
        else:
            logger.warning("server %s: unknown message %r from the master", self.server_id, kind)

    # ------------------------------------------------------------------ membership

    def _apply_add(self, record):
        if self.members.get(record["id"]) == record:
            return
        self.members[record["id"]] = record
        self._on_add(record)

    def _apply_remove(self, server_id):
        if server_id == self.server_id or server_id not in self.members:
            return
        del self.members[server_id]
        self._on_remove(server_id)

    def _apply_sync(self, records):
        ids = {r["id"] for r in records}
        for server_id in [s for s in self.members if s not in ids]:
            self._apply_remove(server_id)
        for record in records:
            self._apply_add(record)

    # ------------------------------------------------------------------ commands

    def _run_command(self, req_id, name, args):
        if name == wire.CMD_AFTER_START_ALL:
            if self._after_start_all_done:   # once per process, even across master restarts
                self._send(wire.RESULT, req_id, True, None)
                return
            self._after_start_all_done = True
        try:
            result = self._on_command(name, args)
            ok = True
        except Exception as e:
            logger.exception("server %s: command %s failed", self.server_id, name)
            result, ok = "%s: %s" % (type(e).__name__, e), False
        try:
            self._send(wire.RESULT, req_id, ok, result)
        except (TypeError, ValueError) as e:      # a result msgpack cannot carry
            self._send(wire.RESULT, req_id, False, "command %s returned %r: %s"
                       % (name, type(result).__name__, e))
