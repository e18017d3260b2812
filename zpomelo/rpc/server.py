"""RpcServer: owns one ROUTER socket and runs each incoming call in a bounded gevent pool.

Greenlets and ownership:
- one reader greenlet receives frames, decodes envelopes and hands each to the pool;
- each request runs `dispatch(service, method, args)` in a pool greenlet (it may block);
- one writer greenlet owns all sends: finished replies are queued to it, and replies for the same
  peer that are ready together leave as one frame.

At the limit (`pool_size` calls in flight) the reader waits for a free slot before it takes the
next envelope: it stops reading the ROUTER, ZeroMQ's receive queue fills up and then TCP pushes
back on the callers. That is the backpressure; nothing is dropped, callers see latency (and, past
their deadline, RpcTimeout). `stats["backpressure_waits"]` counts how often the reader had to wait.

Notifies run the same way but send no reply; their exceptions are logged. A dispatch exception is
returned as [type name, `code` attribute if int (else 500), str(exc)]. A result msgpack cannot
serialize is returned as a TypeError error reply. Malformed frames are logged and dropped.
"""
import logging
import time

import gevent
import zmq
from gevent.event import Event

from zpomelo.errors import ProtocolError
from zpomelo.greenpool import GreenPool
from zpomelo.rpc.greenzmq import GreenSocket
from zpomelo.rpc.envelope import REQUEST, EnvelopePacker, join_frame, unpack_requests
from zpomelo.rpc.zsock import bind
from zpomelo.settings import default

logger = logging.getLogger(__name__)

DEFAULT_POOL_SIZE = default("rpcPoolSize")
MAX_ENVELOPES_PER_FRAME = 1024


class RpcServer:
    """Binds a ROUTER at tcp://host:port (port 0: any free port, read back as `.port`) and serves."""

    def __init__(self, host, port, dispatch, pool_size=DEFAULT_POOL_SIZE, context=None, hwm=100_000):
        self._dispatch = dispatch
        self._context = context if context is not None else zmq.Context.instance()
        self._packer = EnvelopePacker()
        self._pool = GreenPool(pool_size)
        self.pool_size = pool_size
        self.stats = {"requests": 0, "notifies": 0, "malformed": 0, "backpressure_waits": 0}
        self._outgoing = {}  # peer identity -> [packed reply, ...]
        self._wake_writer = Event()
        self._writer_idle = Event()
        self._stopping = False

        sock = self._context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, hwm)
        sock.setsockopt(zmq.RCVHWM, hwm)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        try:
            self.port = bind(sock, host, port, "rpc server")
        except OSError:
            sock.close()
            raise
        self._socket = GreenSocket(sock)
        self.host = host
        self.endpoint = "tcp://%s:%d" % (host, self.port)
        self._reader = gevent.spawn(self._read_loop)
        self._writer = gevent.spawn(self._write_loop)
        logger.info("rpc server listening on %s (pool %d)", self.endpoint, pool_size)

    @property
    def in_flight(self):
        """Calls and notifies currently running in the pool."""
        return len(self._pool)

    def _read_loop(self):
        recv = self._socket.recv_multipart
        pool = self._pool
        spawn = pool.spawn
        stats = self.stats
        while True:
            parts = recv()
            if len(parts) != 2:
                stats["malformed"] += 1
                logger.warning("rpc server %s dropped a message of %d frames (expected 2)", self.endpoint, len(parts))
                continue
            identity, frame = parts
            try:
                envelopes = unpack_requests(frame)
            except ProtocolError as exc:
                stats["malformed"] += 1
                logger.warning("rpc server %s dropped a frame from %r: %s", self.endpoint, identity, exc)
                continue
            for env in envelopes:
                if pool.full():
                    stats["backpressure_waits"] += 1
                spawn(self._serve, identity, env)  # waits for a free slot when the pool is full

    def _serve(self, identity, env):
        kind, call_id, service, method, args = env
        if kind != REQUEST:
            self.stats["notifies"] += 1
            try:
                self._dispatch(service, method, args)
            except Exception:
                logger.exception("rpc notify %s.%s failed", service, method)
            return
        self.stats["requests"] += 1
        try:
            result = self._dispatch(service, method, args)
        except Exception as exc:
            packed = self._packer.error_from(call_id, exc)
        else:
            try:
                packed = self._packer.reply(call_id, result)
            except (TypeError, ValueError, OverflowError) as exc:
                logger.error("rpc %s.%s returned a value msgpack cannot serialize: %s", service, method, exc)
                packed = self._packer.error(
                    call_id, "TypeError", 500, "result of %s.%s cannot be serialized: %s" % (service, method, exc)
                )
        queue = self._outgoing.get(identity)
        if queue is None:
            self._outgoing[identity] = [packed]
            self._writer_idle.clear()
            self._wake_writer.set()
        else:
            queue.append(packed)

    def _write_loop(self):
        send = self._socket.send_multipart
        while True:
            if not self._outgoing:
                self._writer_idle.set()
                self._wake_writer.wait()
                self._wake_writer.clear()
                self._writer_idle.clear()
            outgoing, self._outgoing = self._outgoing, {}
            for identity, replies in outgoing.items():
                for start in range(0, len(replies), MAX_ENVELOPES_PER_FRAME):
                    send([identity, join_frame(replies[start : start + MAX_ENVELOPES_PER_FRAME])])

    def stop(self, drain_timeout=5.0):
        """Stop reading, let in-flight calls finish and their replies leave (up to the deadline), close."""
        if self._stopping:
            return
        self._stopping = True
        deadline = time.monotonic() + drain_timeout
        self._reader.kill()
        if not self._pool.join(timeout=max(0.0, deadline - time.monotonic())):
            logger.warning(
                "rpc server %s: %d calls still running after %.1f s; abandoning them",
                self.endpoint, len(self._pool), drain_timeout,
            )
            self._pool.kill()
        self._writer_idle.wait(timeout=max(0.0, deadline - time.monotonic()))
        self._writer.kill()
        # Replies already handed to ZeroMQ still need its I/O thread to write them out.
        self._socket.close(linger=int(max(0.1, deadline - time.monotonic()) * 1000))
        logger.info("rpc server %s stopped", self.endpoint)

    close = stop
