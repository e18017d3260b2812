"""GreenSocket: a lean gevent wrapper around a plain pyzmq socket (our replacement for zmq.green).

Why not zmq.green: measured on the 2-core dev box, a DEALER/ROUTER ping-pong between two
processes takes p50 ~200-260 us with zmq.green sockets and ~55-90 us with this wrapper. zmq.green
raises and catches an EAGAIN exception on every empty read and runs a dozen enum.Flag operations
per call (`flags & zmq.NOBLOCK` ...); here we ask ZMQ_EVENTS first, using plain ints.

How it waits: ZMQ_FD only signals that ZMQ_EVENTS may have changed (edge-like), and any send,
recv or EVENTS query on the socket may consume that signal. So a waiting reader or writer always
re-checks ZMQ_EVENTS before sleeping, and every operation pokes the *other* waiter (reader after a
send, writer after a recv) when the socket became ready for it. A 1 s re-check timer guards
against a missed signal, as zmq.green does.

Ownership: one greenlet receives and one greenlet does blocking sends (`send`/`send_multipart`,
which wait when the HWM is reached). `try_send_multipart` never waits, so any greenlet may use it;
ROUTER, PUB and XPUB sends never block in ZeroMQ, which is what makes direct sends safe there.
"""
import zmq
from gevent.hub import Waiter, get_hub
from zmq.backend import Socket as _CSocket

_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE = int(zmq.SNDMORE)
_EVENTS = int(zmq.EVENTS)
_RCVMORE = int(zmq.RCVMORE)
_POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)
_EAGAIN = zmq.EAGAIN

# The Cython methods, called unbound: they skip pyzmq's Python-level wrappers.
_get = _CSocket.get
_recv = _CSocket.recv
_send = _CSocket.send

RECHECK_SECONDS = 1.0


class GreenSocket:
    __slots__ = ("socket", "_hub", "_loop", "_watcher", "_timer", "_read_waiter", "_write_waiter", "closed")

    def __init__(self, socket):
        self.socket = socket
        self._hub = get_hub()
        self._loop = self._hub.loop
        self._watcher = self._loop.io(socket.FD, 1)
        self._timer = self._loop.timer(RECHECK_SECONDS, RECHECK_SECONDS)
        self._timer.ref = False  # the safety timer alone must not keep the hub alive
        self._timer.start(self._recheck)
        self._read_waiter = None
        self._write_waiter = None
        self.closed = False

    # -- waiting -------------------------------------------------------------------------------

    def _wait(self, attr):
        if self.closed:
            raise zmq.ZMQError(zmq.ENOTSOCK, "socket closed")
        waiter = Waiter(self._hub)
        setattr(self, attr, waiter)
        watcher = self._watcher
        if not watcher.active:
            watcher.start(self._on_fd)
        try:
            waiter.get()
        finally:
            if getattr(self, attr) is waiter:
                setattr(self, attr, None)
            if self._read_waiter is None and self._write_waiter is None:
                watcher.stop()
        if self.closed:
            raise zmq.ZMQError(zmq.ENOTSOCK, "socket closed")

    def _on_fd(self):
        # Runs in the hub. Wake whoever waits; they re-check ZMQ_EVENTS themselves.
        self._wake_all()

    def _recheck(self):
        if self._read_waiter is not None or self._write_waiter is not None:
            self._wake_all()

    def _wake_all(self):
        reader, writer = self._read_waiter, self._write_waiter
        self._read_waiter = self._write_waiter = None
        if reader is not None:
            reader.switch(None)
        if writer is not None:
            writer.switch(None)

    def _wake_later(self, attr):
        waiter = getattr(self, attr)
        if waiter is not None:
            self._loop.run_callback(self._wake_one, attr, waiter)

    def _wake_one(self, attr, waiter):
        if getattr(self, attr) is waiter:
            setattr(self, attr, None)
            waiter.switch(None)

    # -- receiving (one greenlet) --------------------------------------------------------------

    def recv(self):
        sock = self.socket
        while not _get(sock, _EVENTS) & _POLLIN:
            self._wait("_read_waiter")
        data = _recv(sock, _NOBLOCK)
        if self._write_waiter is not None and _get(sock, _EVENTS) & _POLLOUT:
            self._wake_later("_write_waiter")
        return data

    def try_recv(self):
        """One single-part message if one is ready, else None; never waits."""
        sock = self.socket
        if not _get(sock, _EVENTS) & _POLLIN:
            return None
        return _recv(sock, _NOBLOCK)

    def recv_multipart(self):
        sock = self.socket
        while not _get(sock, _EVENTS) & _POLLIN:
            self._wait("_read_waiter")
        parts = [_recv(sock, _NOBLOCK)]
        while _get(sock, _RCVMORE):
            parts.append(_recv(sock, _NOBLOCK))
        if self._write_waiter is not None and _get(sock, _EVENTS) & _POLLOUT:
            self._wake_later("_write_waiter")
        return parts

    def try_recv_multipart(self):
        """One message's parts if one is ready, else None; never waits (the reader only)."""
        sock = self.socket
        if not _get(sock, _EVENTS) & _POLLIN:
            return None
        parts = [_recv(sock, _NOBLOCK)]
        while _get(sock, _RCVMORE):
            parts.append(_recv(sock, _NOBLOCK))
        return parts

    def recv_multipart_frames(self):
        """Like recv_multipart, as zmq.Frame objects: their metadata says who sent them
        (frame.get("Peer-Address")), which the master uses to log and throttle per peer."""
        sock = self.socket
        while not _get(sock, _EVENTS) & _POLLIN:
            self._wait("_read_waiter")
        parts = [_recv(sock, _NOBLOCK, False)]
        while _get(sock, _RCVMORE):
            parts.append(_recv(sock, _NOBLOCK, False))
        if self._write_waiter is not None and _get(sock, _EVENTS) & _POLLOUT:
            self._wake_later("_write_waiter")
        return parts

    def input_waiting(self):
        """Whether a message waits unread; never waits. Wakes the reader when one does (this
        EVENTS query may have consumed the FD's signal the reader was waiting for)."""
        if self.closed or not _get(self.socket, _EVENTS) & _POLLIN:
            return False
        self._wake_later("_read_waiter")
        return True

    # -- sending -------------------------------------------------------------------------------

    def try_send_multipart(self, parts):
        """Send without waiting; False when ZeroMQ would block (HWM reached). Any greenlet."""
        sock = self.socket
        last = len(parts) - 1
        try:
            for index, part in enumerate(parts):
                _send(sock, part, _NOBLOCK | _SNDMORE if index < last else _NOBLOCK)
        except zmq.ZMQError as exc:
            if exc.errno != _EAGAIN:
                raise
            # ZeroMQ checks the HWM on the first part only: later parts of a message never block.
            return False
        if self._read_waiter is not None and _get(sock, _EVENTS) & _POLLIN:
            self._wake_later("_read_waiter")
        return True

    def send_multipart(self, parts):
        """Send, waiting while the HWM is reached. Only the socket's writer greenlet."""
        while not self.try_send_multipart(parts):
            if not _get(self.socket, _EVENTS) & _POLLOUT:
                self._wait("_write_waiter")

    def send(self, data):
        self.send_multipart((data,))

    def close(self, linger=0):
        if self.closed:
            return
        self.closed = True
        self._watcher.stop()
        self._watcher.close()
        self._timer.stop()
        self._timer.close()
        waiters = [w for w in (self._read_waiter, self._write_waiter) if w is not None]
        self._read_waiter = self._write_waiter = None
        for waiter in waiters:
            self._loop.run_callback(waiter.switch, None)
        self.socket.close(linger=linger)
