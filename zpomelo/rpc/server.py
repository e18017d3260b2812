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

Lifecycle (the verbs every socket owner has): the constructor does no work; ``bind()`` binds
(port 0: any free port, ``.port``), ``start()`` binds if needed and starts reading;
``stop_accepting(keep)`` makes the reader refuse new calls with a clear error (a
"ServerStopping" error reply naming the server and the call, so nothing sent to a stopping server
is silently lost) except those ``keep(service, method)`` lets through (the framework's plumbing
that in-flight work elsewhere still needs); ``drain(timeout)`` waits for the calls in flight;
``close()`` stops the greenlets and closes the socket once queued replies are out; ``stop()`` is
all three.

Notifies run the same way but send no reply; their exceptions are logged. A dispatch exception is
returned as [type name, `code` attribute if int (else 500), str(exc)]. A result msgpack cannot
serialize is returned as a TypeError error reply. Malformed frames are logged and dropped.
"""
import logging
import time

import gevent
import zmq
from gevent.event import Event

from zpomelo.errors import CODE_FAIL, ProtocolError
from zpomelo.greenpool import GreenPool
from zpomelo.rpc import security
from zpomelo.rpc.greenzmq import GreenSocket
from zpomelo.rpc.envelope import REQUEST, EnvelopePacker, join_frame, unpack_requests
from zpomelo.rpc.zsock import bind
from zpomelo.settings import default

logger = logging.getLogger(__name__)

DEFAULT_POOL_SIZE = default("rpcPoolSize")
MAX_ENVELOPES_PER_FRAME = 1024


class RpcServer:
    """A ROUTER at tcp://host:port (port 0: any free port, read back as `.port`) and its pool."""

    def __init__(self, host, port, dispatch, pool_size=DEFAULT_POOL_SIZE, context=None, hwm=100_000,
                 name=None, keys=None):
        self._dispatch = dispatch
        self._context = context if context is not None else zmq.Context.instance()
        self._packer = EnvelopePacker()
        self._pool = GreenPool(pool_size)
        self.pool_size = pool_size
        self.stats = {"requests": 0, "notifies": 0, "malformed": 0, "backpressure_waits": 0,
                      "refused": 0}
        self._outgoing = {}  # peer identity -> [packed reply, ...]
        self._wake_writer = Event()
        self._writer_idle = Event()
        self._stopping = False
        self._closed = False
        self._refusing = False   # stop_accepting() was called
        self._keep = None        # keep(service, method) -> True: still served while refusing
        self._hwm = hwm
        self._keys = keys        # the project's ClusterKeys: a CURVE server when it has CURVE keys
        self.name = name         # for the refusal message (the server id)
        self.host = host
        self.port = port
        self.endpoint = None
        self._socket = None
        self._reader = self._writer = None

    def bind(self):
        """Bind the ROUTER (callers' messages queue in ZeroMQ until ``start``)."""
        if self._socket is not None:
            return self
        sock = self._context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, self._hwm)
        sock.setsockopt(zmq.RCVHWM, self._hwm)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        security.secure_server(sock, self._keys)
        self.port = bind(sock, self.host, self.port, "rpc server")
        self._socket = GreenSocket(sock)
        self.endpoint = "tcp://%s:%d" % (self.host, self.port)
        return self

    def start(self):
        """Bind if needed and start serving."""
        self.bind()
        if self._reader is None:
            self._reader = gevent.spawn(self._read_loop)
            self._writer = gevent.spawn(self._write_loop)
            logger.info("rpc server listening on %s (pool %d)", self.endpoint, self.pool_size)
        return self

    def stop_accepting(self, keep=None):
        """Refuse new calls from now on (an error reply each), except ``keep(service, method)``."""
        self._keep = keep
        self._refusing = True

    @property
    def accepting(self):
        """False once stop_accepting() was called: new calls are refused."""
        return not self._refusing

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
                if self._refusing and not self._admit(identity, env):
                    continue
                if pool.full():
                    stats["backpressure_waits"] += 1
                spawn(self._serve, identity, env)  # waits for a free slot when the pool is full

    def _admit(self, identity, env):
        """While refusing: False (the caller gets an error reply) unless ``keep`` lets it in."""
        kind, call_id, service, method, _args = env
        keep = self._keep
        if keep is not None and keep(service, method):
            return True
        self.stats["refused"] += 1
        why = "server %s is stopping: %s.%s was not run; call another server or retry" % (
            self.name or self.endpoint, service, method)
        if kind == REQUEST:
            self._queue_reply(identity, self._packer.error(call_id, "ServerStopping", CODE_FAIL, why))
        else:
            logger.warning("rpc notify refused: %s", why)
        return False

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
        self._queue_reply(identity, packed)

    def _queue_reply(self, identity, packed):
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

    def drain(self, timeout):
        """Wait up to ``timeout`` for the calls in flight; True when none is left."""
        if self._pool.join(timeout=max(0.0, timeout)):
            return True
        logger.warning("rpc server %s: %d calls still running after %.1f s",
                       self.endpoint, len(self._pool), timeout)
        return False

    def close(self, timeout=1.0):
        """Abandon calls still running, let queued replies leave (up to ``timeout``), close."""
        if self._closed:
            return
        self._closed = True
        self._refusing = True
        deadline = time.monotonic() + timeout
        if self._reader is not None:
            self._reader.kill()
        if len(self._pool):
            self._pool.kill()
        if self._writer is not None:
            self._writer_idle.wait(timeout=max(0.0, deadline - time.monotonic()))
            self._writer.kill()
        if self._socket is not None:
            # Replies already handed to ZeroMQ still need its I/O thread to write them out.
            self._socket.close(linger=int(max(0.1, deadline - time.monotonic()) * 1000))
        logger.info("rpc server %s stopped", self.endpoint)

    def stop(self, drain_timeout=5.0):
        """Refuse new calls, let in-flight ones finish and their replies leave (up to the
        deadline), close."""
        if self._stopping:
            return
        self._stopping = True
        deadline = time.monotonic() + drain_timeout
        self.stop_accepting(self._keep)
        self.drain(drain_timeout)
        self.close(max(0.0, deadline - time.monotonic()))
