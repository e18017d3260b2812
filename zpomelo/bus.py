"""Bus: the push bus between servers. Owns one XPUB (our publications) and one SUB (everyone's).

Topics (one ZeroMQ message = [topic, payload]):
    b"g"                    global pushes, every frontend receives them
    b"f:" + id + b"\\x00"   pushes addressed to frontend `id` (the NUL ends the id, because
                            ZeroMQ matches prefixes: "f:conn-1" would also match "f:conn-10")

Our SUB subscribes to b"g" first and then to our frontend topic, on every connection. ZeroMQ keeps
the order, so when our XPUB (verbose: it reports every subscription) has seen "f:<id>" from a peer,
that peer also receives "g". Until then, a publish to that frontend goes to `fallback(frontend_id,
payload)`, which the application makes a reliable RPC notify (the DEALER queues until connected):
no slow-joiner loss. An unsubscription (the peer's SUB closed or disconnected; XPUB reports it
when the last subscriber of the topic is gone) puts that frontend back on the fallback path.

Delivery guarantee, per publisher -> frontend pair: in order and at-most-once over the PUB path;
reliable (as reliable as RPC) over the fallback path before the subscription is seen. The two
paths are not ordered against each other, so messages published right around the moment the
subscription is first seen may arrive out of order. When a subscriber's queue is at the high water
mark the message is dropped for it; drops are counted in `stats["dropped"]` and logged.

Ordering points (what lets an answer wait for the pushes sent before it; ``mark`` and
``when_delivered``, from the base class bus_ordering.OrderingPoints): every message we publish
carries our source key (server id + a random epoch per Bus, so a restarted publisher is a new
source) and a sequence number in its topic, after the part subscribers match on:
``b"f:" + id + b"\x00" + source + seq`` (a count per frontend) and ``b"g" + source + seq`` (one
count for the global topic).

Subscription events are applied by the XPUB reader greenlet and, so that a publish never acts on
stale state, also drained (without waiting) at the start of each publish.

Lifecycle (the verbs of every socket owner): the constructor does no work; ``bind()`` binds the
XPUB (port 0: any free port, ``.port``), ``start()`` binds if needed, connects nothing yet and
starts the readers; ``close()`` (also ``stop()``) stops them and closes both sockets.

Greenlets: one reads the XPUB (subscriptions), one reads the SUB and calls `on_message(kind,
payload)` with kind "f" or "g" (it must not block: the messages queued together are handled with
client writes held until the batch ends). `publish_*` may be called from any greenlet:
they send directly on the XPUB, which never waits (XPUB_NODROP makes a full queue an EAGAIN we
count, instead of a wait), so no writer greenlet is needed.
"""
import logging
import os
import struct

import gevent
import zmq

from zpomelo.bus_ordering import MARK_WAIT, OrderingPoints  # noqa: F401 - MARK_WAIT is public here
from zpomelo.rpc import security
from zpomelo.rpc.greenzmq import GreenSocket
from zpomelo.rpc.zsock import bind, set_reconnect
from zpomelo.socket_writer import hold_writes, release_writes

logger = logging.getLogger(__name__)

GLOBAL_TOPIC = b"g"
FRONTEND_PREFIX = b"f:"
TOPIC_END = b"\x00"
YIELD_EVERY = 64   # messages handled in a row before the reader lets other greenlets run
_SEQ = struct.Struct(">Q")


def frontend_topic(frontend_id):
    return FRONTEND_PREFIX + frontend_id.encode() + TOPIC_END


class Bus(OrderingPoints):
    def __init__(self, self_id, host, port, on_message, fallback=None, context=None, hwm=100_000, keys=None):
        self.self_id = self_id
        self._on_message = on_message
        self._fallback = fallback
        self._context = context if context is not None else zmq.Context.instance()
        self._subscribed = set()  # frontend ids whose "f:<id>" subscription our XPUB has seen
        self._peers = {}  # server id -> bus endpoint
        self._own_topic = frontend_topic(self_id)
        # source key: our id + an epoch, then a NUL; a subscriber reads it back from the topic
        self.source = self_id.encode() + b"#" + os.urandom(6).hex().encode() + TOPIC_END
        self._sent = {}        # frontend id -> last seq published on its topic
        self._base = {}        # frontend id -> (frontend seq, global seq) when its subscription was seen
        self._global_sent = 0
        self._delivered = {}   # source -> [frontend seq, global seq] handed to on_message
        self._waiting = {}     # source -> [[frontend seq, global seq, fn, deadline], ...]
        self._mark_sweeper = None   # the greenlet releasing answers whose MARK_WAIT passed
        self.stats = {"published": 0, "fallbacks": 0, "dropped": 0, "received": 0,
                      "mark_waits": 0, "mark_timeouts": 0}
        self._hwm = hwm
        self._keys = keys  # the project's ClusterKeys: CURVE on both sockets when it has CURVE keys
        self.host = host
        self.port = port
        self.endpoint = None
        self._pub_raw = self._pub = self._sub = None
        self._closed = False
        self._greenlets = []

    def bind(self):
        """Bind the XPUB and make the SUB (subscribed, connected to no one yet)."""
        if self._pub is not None:
            return self
        hwm = self._hwm
        pub = self._context.socket(zmq.XPUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.setsockopt(zmq.SNDHWM, hwm)
        pub.setsockopt(zmq.XPUB_VERBOSE, 1)
        pub.setsockopt(zmq.XPUB_NODROP, 1)
        security.secure_server(pub, self._keys)  # CURVE: only the cluster's client key may subscribe
        self.port = bind(pub, self.host, self.port, "bus")
        self.endpoint = "tcp://%s:%d" % (self.host, self.port)

        sub = self._context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, hwm)
        set_reconnect(sub)
        security.secure_client(sub, self._keys)
        sub.setsockopt(zmq.SUBSCRIBE, GLOBAL_TOPIC)  # first: see the module docstring
        sub.setsockopt(zmq.SUBSCRIBE, self._own_topic)
        self._pub_raw = pub
        self._pub = GreenSocket(pub)
        self._sub = GreenSocket(sub)
        return self

    def start(self):
        """Bind if needed and start the two readers."""
        self.bind()
        if not self._greenlets:
            self._greenlets = [gevent.spawn(self._subscription_loop), gevent.spawn(self._message_loop)]
            logger.info("bus %s publishing on %s", self.self_id, self.endpoint)
        return self

    # -- peers (the SUB side) ------------------------------------------------------------------

    def add_peer(self, server_id, endpoint):
        """Subscribe to a server's bus. Re-adding with a new endpoint reconnects."""
        old = self._peers.get(server_id)
        if old == endpoint:
            return
        if old is not None:
            self._disconnect(old)
        self._sub.socket.connect(endpoint)
        self._peers[server_id] = endpoint

    def remove_peer(self, server_id):
        endpoint = self._peers.pop(server_id, None)
        if endpoint is not None:
            self._disconnect(endpoint)

    def _disconnect(self, endpoint):
        try:
            self._sub.socket.disconnect(endpoint)
        except zmq.ZMQError as exc:  # already gone: nothing to undo
            logger.debug("bus %s: disconnect %s: %s", self.self_id, endpoint, exc)

    def subscribed_frontends(self):
        """Frontend ids whose subscription our XPUB has seen (a copy)."""
        return set(self._subscribed)

    # -- publishing (any greenlet) -------------------------------------------------------------

    def publish_frontend(self, frontend_id, payload):
        """Send payload to one frontend: over the PUB once subscribed, else through the fallback."""
        self._drain_subscriptions()
        if frontend_id in self._subscribed:
            seq = self._sent.get(frontend_id, 0) + 1
            topic = frontend_topic(frontend_id) + self.source + _SEQ.pack(seq)
            if self._pub.try_send_multipart((topic, payload)):
                self._sent[frontend_id] = seq
                self.stats["published"] += 1
            else:
                self._count_drop("frontend %s" % (frontend_id,))
        else:
            self._use_fallback(frontend_id, payload)

    def publish_global(self, payload, frontend_ids=()):
        """One send on the global topic, plus the fallback for each of `frontend_ids` not yet subscribed."""
        self._drain_subscriptions()
        if self._subscribed:
            pub = self._pub
            seq = self._global_sent + 1
            topic = GLOBAL_TOPIC + self.source + _SEQ.pack(seq)
            if pub.try_send_multipart((topic, payload)):
                self._global_sent = seq
                self.stats["published"] += 1
            else:
                # Some subscriber is full; NODROP refused the message for everyone. Send it lossy so
                # only the full ones lose it.
                self._pub_raw.setsockopt(zmq.XPUB_NODROP, 0)
                try:
                    if pub.try_send_multipart((topic, payload)):
                        self._global_sent = seq
                finally:
                    self._pub_raw.setsockopt(zmq.XPUB_NODROP, 1)
                self._count_drop("a global push for at least one slow frontend")
        for frontend_id in frontend_ids:
            if frontend_id not in self._subscribed:
                self._use_fallback(frontend_id, payload)

    def _use_fallback(self, frontend_id, payload):
        if self._fallback is None:
            self._count_drop("frontend %s (not subscribed yet and no fallback)" % (frontend_id,))
            return
        self.stats["fallbacks"] += 1
        self._fallback(frontend_id, payload)

    def _count_drop(self, what):
        self.stats["dropped"] += 1
        dropped = self.stats["dropped"]
        if dropped == 1 or dropped % 1000 == 0:
            logger.warning("bus %s dropped a push to %s (%d dropped so far): subscriber queue full",
                           self.self_id, what, dropped)

    # -- readers -------------------------------------------------------------------------------

    def _subscription_loop(self):
        recv = self._pub.recv
        try:
            while True:
                self._handle_subscription(recv())
        except zmq.ZMQError:
            if not self._closed:
                raise

    def _drain_subscriptions(self):
        """Apply subscription events ZeroMQ already holds, so a publish decides on fresh state."""
        try_recv = self._pub.try_recv
        event = try_recv()
        while event is not None:
            self._handle_subscription(event)
            event = try_recv()

    def _handle_subscription(self, event):
        prefix_len = len(FRONTEND_PREFIX)
        if len(event) < 2 + prefix_len or event[1 : 1 + prefix_len] != FRONTEND_PREFIX or event[-1:] != TOPIC_END:
            return  # the global topic, or not one of ours
        frontend_id = event[1 + prefix_len : -1].decode("utf-8", "replace")
        if event[0] == 1:
            if frontend_id not in self._subscribed:
                logger.info("bus %s: frontend %s subscribed", self.self_id, frontend_id)
                self._subscribed.add(frontend_id)
                self._base[frontend_id] = (self._sent.get(frontend_id, 0), self._global_sent)
        elif event[0] == 0:
            logger.info("bus %s: frontend %s unsubscribed", self.self_id, frontend_id)
            self._subscribed.discard(frontend_id)

    def _message_loop(self):
        """Read the SUB. When more messages are queued behind the one that woke us, they are
        handled together with client writes held (socket_writer.hold_writes): the pushes (and
        the answers they release) one connection gets from the batch leave in one send. A lone
        message is written at once, unheld."""
        recv = self._sub.recv_multipart
        try_recv = self._sub.try_recv_multipart
        handle = self._handle_message
        sleep = gevent.sleep
        in_a_row = 0
        try:
            while True:
                parts = recv()
                in_a_row += 1
                following = try_recv() if in_a_row < YIELD_EVERY else None
                if following is None:
                    handle(parts)
                else:
                    held = hold_writes()
                    try:
                        handle(parts)
                        while following is not None:
                            handle(following)
                            in_a_row += 1
                            following = try_recv() if in_a_row < YIELD_EVERY else None
                    finally:
                        if held:
                            release_writes()
                if in_a_row >= YIELD_EVERY:
                    # recv does not wait while messages are queued: a backlog (a frontend resumed
                    # after a stall) would otherwise hold the loop until it is gone, starving the
                    # clients' heartbeats and handshakes
                    in_a_row = 0
                    sleep(0)
        except zmq.ZMQError:
            if not self._closed:
                raise

    def _handle_message(self, parts):
        if len(parts) != 2:
            logger.warning("bus %s dropped a message of %d frames", self.self_id, len(parts))
            return
        topic, payload = parts
        own_topic = self._own_topic
        if topic.startswith(own_topic):
            index, rest = 0, topic[len(own_topic):]
            kind = "f"
        elif topic[:1] == GLOBAL_TOPIC:
            index, rest = 1, topic[1:]
            kind = "g"
        else:
            return
        self.stats["received"] += 1
        try:
            self._on_message(kind, payload)
        except Exception:
            logger.exception("bus %s: on_message raised for a %r message", self.self_id, kind)
        if len(rest) > _SEQ.size:
            self._note_delivered(rest[:-_SEQ.size], index, _SEQ.unpack(rest[-_SEQ.size:])[0])

    def close(self):
        if self._closed:
            return
        self._closed = True
        for greenlet in self._greenlets:
            if greenlet is not gevent.getcurrent():
                greenlet.kill(block=True, timeout=1)
        if self._pub is not None:
            self._sub.close(linger=0)
            self._pub.close(linger=0)
        self._subscribed.clear()
        sweeper, self._mark_sweeper = self._mark_sweeper, None
        if sweeper is not None and sweeper is not gevent.getcurrent():
            sweeper.kill(block=False)
        waiting, self._waiting = self._waiting, {}
        for entries in waiting.values():   # no more pushes will come: answer now
            for entry in entries:
                self._release(entry)

    stop = close
