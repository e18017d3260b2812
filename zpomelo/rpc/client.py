"""RpcClient: one DEALER per peer server; calls, async calls with callbacks, notifies.

Per peer (see `_peer.Peer`): a DEALER, a writer greenlet that owns its sends, a reader greenlet
for replies and a monitor greenlet watching the connection. Any greenlet may call; calls are packed
in the caller (an unserializable argument raises there) and queued to the peer's writer, which
sends everything queued so far as one frame (an idle client therefore sends at once; a busy one
batches).

Pending calls live in one dict keyed by call id. Deadlines live in a timer wheel (buckets of
TICK seconds) swept by one greenlet, so a call costs no timer and no greenlet of its own.

Failure model:
- unknown server id: ServerGone at once;
- peer connected then dropped (process killed, host gone -> ZMTP heartbeat timeout): its pending
  calls fail with ServerGone as soon as ZeroMQ reports the disconnect, and new calls fail at once
  while it is down; the DEALER keeps reconnecting (100 ms .. 1 s) and calls work again when the
  peer is back on the same endpoint. ServerGone means "outcome unknown": the call may have run.
- peer never connected yet: calls and notifies queue in the DEALER (delivered once it connects)
  and calls time out if it never does;
- no reply before the deadline: RpcTimeout naming the call and the server; a late reply is dropped.
- more than `max_queued` envelopes waiting for one peer's writer: the call fails with RpcError.

Callbacks of `call_async` run in a client greenlet (the peer's reader for replies, the sweeper for
timeouts, the monitor for disconnects) or, when the call fails at once, in the caller before
`call_async` returns. They must not block.
"""
import itertools
import logging
import time

import gevent
import zmq
from gevent.event import AsyncResult

from zpomelo.errors import RpcError, RpcTimeout, ServerGone
from zpomelo.rpc.envelope import EnvelopePacker
from zpomelo.rpc.peer import DOWN, Peer
from zpomelo.settings import default
from zpomelo.socket_writer import hold_writes, release_writes

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = default("rpcTimeout")
TICK = 0.05  # timer wheel resolution: a timeout fires at most about one tick late


class RpcClient:
    def __init__(self, self_id, default_timeout=DEFAULT_TIMEOUT, context=None, sndhwm=10_000, max_queued=100_000,
                 keys=None):
        """keys: the project's ClusterKeys; with CURVE keys every peer connection is a CURVE client."""
        self.self_id = self_id
        self._keys = keys
        self.default_timeout = default_timeout
        self._context = context if context is not None else zmq.Context.instance()
        self._sndhwm = sndhwm
        self._max_queued = max_queued
        self._packer = EnvelopePacker()
        self._peers = {}
        self._pending = {}  # call id -> (peer, service, method, timeout, callback, sent at)
        self._call_ids = itertools.count(1)
        self._socket_ids = itertools.count(1)
        self._wheel = {}  # tick number -> [call id, ...]
        self._swept_tick = int(time.monotonic() / TICK)
        self._closed = False
        self.stats = {"late_replies": 0, "timeouts": 0}
        # metrics.stats.RpcStats (app.stats.rpc): reply(server_id, service, method, seconds,
        # ok), timeout(...), gone(...); each call reports once
        self.observer = None
        self._sweeper = gevent.spawn(self._sweep_loop)

    # -- peers ---------------------------------------------------------------------------------

    def add_peer(self, server_id, endpoint):
        """Connect to a server's ROUTER. Re-adding with a new endpoint replaces the socket."""
        self._check_open()
        peer = self._peers.get(server_id)
        if peer is not None:
            if peer.endpoint == endpoint:
                return
            self._drop_peer(peer, "server %s moved from %s to %s" % (server_id, peer.endpoint, endpoint))
        identity = ("%s#%x.%d" % (self.self_id, id(self), next(self._socket_ids))).encode()
        self._peers[server_id] = Peer(
            server_id, endpoint, self._context, identity, self._sndhwm, self._on_replies, self._on_disconnect,
            keys=self._keys,
        )

    def remove_peer(self, server_id):
        """Forget a server; its pending calls fail at once with ServerGone."""
        peer = self._peers.get(server_id)
        if peer is not None:
            self._drop_peer(peer, "server %s was removed" % (server_id,))

    def peer_state(self, server_id):
        """'connecting', 'up' or 'down'; None for an unknown server."""
        peer = self._peers.get(server_id)
        return peer.state if peer is not None else None

    def pending_count(self):
        """Calls sent and not yet settled (all peers)."""
        return len(self._pending)

    def peers(self):
        return {server_id: peer.endpoint for server_id, peer in self._peers.items()}

    def _drop_peer(self, peer, reason):
        del self._peers[peer.server_id]
        peer.close()
        self._fail_pending(peer, reason)

    # -- calls ---------------------------------------------------------------------------------

    def call(self, server_id, service, method, args, timeout=None):
        """Call and wait (this greenlet only) for the result; raises RpcError/RpcTimeout/ServerGone."""
        result = AsyncResult()

        def done(error, value):
            if error is None:
                result.set(value)
            else:
                result.set_exception(error)

        self.call_async(server_id, service, method, args, timeout, done)
        return result.get()

    def call_async(self, server_id, service, method, args, timeout=None, callback=None):
        """Send a call; `callback(error_or_None, result)` runs when it settles (see module doc)."""
        peer = self._peers.get(server_id)
        if peer is None or peer.state == DOWN:
            if self.observer is not None:
                self.observer.gone(server_id, service, method)
            callback(self._gone(server_id, service, method, peer), None)
            return
        if len(peer.outgoing) >= self._max_queued:
            if self.observer is not None:
                self.observer.gone(server_id, service, method)
            callback(RpcError(
                "rpc %s.%s not sent: %d envelopes already queued for this server; it is not keeping up"
                % (service, method, len(peer.outgoing)), server_id=server_id), None)
            return
        call_id = next(self._call_ids)
        packed = self._packer.request(call_id, service, method, args)  # raises for bad args
        if timeout is None:
            timeout = self.default_timeout
        now = time.monotonic()
        self._pending[call_id] = (peer, service, method, timeout, callback, now)
        tick = -(-(now + timeout) // TICK)  # ceil: never fire early
        if tick <= self._swept_tick:
            tick = self._swept_tick + 1
        bucket = self._wheel.get(tick)
        if bucket is None:
            self._wheel[tick] = [call_id]
        else:
            bucket.append(call_id)
        peer.send(packed)

    def notify(self, server_id, service, method, args):
        """Send without a reply. Raises ServerGone for an unknown server; queued while connecting."""
        self._notify(server_id, service, method, self._packer.notify, args)

    def notify_packed(self, server_id, service, method, packed_args):
        """``notify`` with args already packed (msgpack bytes of an array); see EnvelopePacker."""
        self._notify(server_id, service, method, self._packer.notify_packed, packed_args)

    def _notify(self, server_id, service, method, pack, args):
        peer = self._peers.get(server_id)
        if peer is None:
            raise self._gone(server_id, service, method, None)
        if len(peer.outgoing) >= self._max_queued:
            logger.warning("rpc notify %s.%s to %s dropped: outgoing queue full", service, method, server_id)
            return
        peer.send(pack(service, method, args))

    def _gone(self, server_id, service, method, peer):
        if peer is None:
            why = "is not a known server" if not self._closed else "cannot be reached: the rpc client is closed"
        else:
            why = "is down (connection to %s lost; reconnecting)" % (peer.endpoint,)
        return ServerGone("rpc %s.%s failed: server %s %s" % (service, method, server_id, why), server_id=server_id)

    # -- settling calls ------------------------------------------------------------------------

    def _on_replies(self, peer, replies):
        """Called by a peer's reader with validated reply envelopes (those of one frame).

        What the callbacks write to client sockets is held until all of them ran (a frontend's
        answers: several to one client then leave in one send)."""
        if len(replies) == 1 or not hold_writes():
            self._settle_replies(peer, replies)
            return
        try:
            self._settle_replies(peer, replies)
        finally:
            release_writes()

    def _settle_replies(self, peer, replies):
        pending = self._pending
        observer = self.observer
        if observer is not None:
            now = time.monotonic()
        for _kind, call_id, ok, value in replies:
            entry = pending.pop(call_id, None)
            if entry is None:
                self.stats["late_replies"] += 1
                continue
            if observer is not None:
                observer.reply(peer.server_id, entry[1], entry[2], now - entry[5], ok)
            if ok:
                self._settle(entry[4], None, value)
            else:
                remote_type, code, message = value
                self._settle(entry[4], RpcError(message, remote_type=remote_type, code=code, server_id=peer.server_id), None)

    def _on_disconnect(self, peer):
        self._fail_pending(peer, "connection to server %s at %s lost" % (peer.server_id, peer.endpoint))

    def _fail_pending(self, peer, reason):
        failed = [call_id for call_id, entry in self._pending.items() if entry[0] is peer]
        if failed:
            logger.warning("%s: failing %d pending calls", reason, len(failed))
        for call_id in failed:
            _peer, service, method, _timeout, callback, _sent = self._pending.pop(call_id)
            if self.observer is not None:
                self.observer.gone(peer.server_id, service, method)
            error = ServerGone("rpc %s.%s failed: %s" % (service, method, reason), server_id=peer.server_id)
            self._settle(callback, error, None)

    @staticmethod
    def _settle(callback, error, value):
        try:
            callback(error, value)
        except Exception:
            logger.exception("rpc callback %r raised", callback)

    def _sweep_loop(self):
        while True:
            gevent.sleep(TICK)
            now_tick = int(time.monotonic() / TICK)
            for tick in range(self._swept_tick + 1, now_tick + 1):
                bucket = self._wheel.pop(tick, None)
                if bucket:
                    self._expire(bucket)
            self._swept_tick = now_tick

    def _expire(self, call_ids):
        pending = self._pending
        for call_id in call_ids:
            entry = pending.pop(call_id, None)
            if entry is None:
                continue  # already settled
            peer, service, method, timeout, callback, _sent = entry
            self.stats["timeouts"] += 1
            if self.observer is not None:
                self.observer.timeout(peer.server_id, service, method)
            error = RpcTimeout(
                "rpc %s.%s to server %s got no reply within %.3g s" % (service, method, peer.server_id, timeout),
                server_id=peer.server_id,
            )
            self._settle(callback, error, None)

    # -- lifecycle -----------------------------------------------------------------------------

    def _check_open(self):
        if self._closed:
            raise RuntimeError("RpcClient %s is closed; create a new one" % (self.self_id,))

    def close(self):
        """Close every DEALER; pending calls fail with ServerGone."""
        if self._closed:
            return
        self._closed = True
        for peer in list(self._peers.values()):
            self._drop_peer(peer, "rpc client %s closed" % (self.self_id,))
        self._sweeper.kill()
        self._wheel.clear()

