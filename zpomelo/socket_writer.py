"""SocketWriter: write now while the socket is idle, else queue for one writer greenlet.

The connector (one per client connection) and zpomelo.client (one per connection to a server)
both write whole Pomelo packages from many greenlets onto one stream socket. Sharing one writer
keeps the rules in one place:

- While nothing is queued and no send is under way, `write` sends straight to the non-blocking
  OS socket: no greenlet switch, and most connections never start the writer greenlet at all.
  Whatever the kernel does not take now is left to the writer, already framed.
- Otherwise packages queue, and the writer greenlet (started on first need) sends them in batches
  of about `batch_bytes`, one `sendall` (and one WebSocket message on the connector) per batch.
- `cork()`/`uncork()` hold answers produced while one read is handled and send them together.
- `hold_writes()` ... `release_writes()`: while a greenlet settles a batch of answers (the
  replies of one RPC frame), every writer it writes to is corked, and each is uncorked once at
  the end, so several answers to one connection leave in one `send` (one system call per
  connection and batch instead of one per answer). Writes of other greenlets are not held.
- The queue is bounded (`max_bytes`, `max_packages`): a peer that does not read must not hold
  unbounded memory, so going over calls `on_overflow()` and `write` returns False.
- `close(flush=True, timeout, last)` sends what is queued, then `last` (a WebSocket close frame),
  within `timeout`; `close(flush=False)` drops the queue and stops at once.

TLS sockets always go through the writer greenlet (an SSL write may need a read). Errors never
raise from here: a failed send calls `on_error(reason)` once and later writes return False.
"""
from collections import deque

import gevent
from gevent.event import Event
from greenlet import getcurrent

from zpomelo.netio import os_socket

BATCH_BYTES = 65536
_INF = float("inf")

# The batch being held (hold_writes): the writers it corked, and the greenlet running it.
_held = None
_holder = None


def hold_writes():
    """Hold the calling greenlet's writes, on every SocketWriter, until `release_writes()`.

    Returns False (and holds nothing more) when a batch is already held: the outer one releases.
    The caller must not block before releasing (other greenlets' writes to a held writer wait
    too), and must release in a `finally`.
    """
    global _held, _holder
    if _held is not None:
        return False
    _held = []
    _holder = getcurrent()
    return True


def release_writes():
    """Uncork every writer the held batch corked: each sends what it holds, as one write."""
    global _held, _holder
    writers = _held
    _held = _holder = None
    if writers:
        for writer in writers:
            writer.uncork()


class SocketWriter:
    """The single writer of one stream socket; see the module docstring.

    `frame(package) -> bytes` and `frame_batch(packages) -> bytes` wrap packages for the wire
    (default: as they are, and joined). `owns_socket`: close the socket when the writer ends
    (the connector); the client closes its socket itself, after the reader has stopped.

    One per client connection, so it stays small while idle (slots; the queue, the writer's
    Event and the end Event are made when first needed).
    """

    __slots__ = ("closing", "corked", "queued_bytes", "_sock", "_os_sock", "_on_error",
                 "_on_overflow", "_frame", "_frame_batch", "_max_bytes", "_max_packages",
                 "_batch_bytes", "_owns_socket", "_queue", "_control", "_unsent", "_busy", "_last",
                 "_greenlet", "_wakeup", "_done", "_ended", "_flush_timer")

    def __init__(self, sock, on_error, on_overflow, frame=None, frame_batch=None,
                 max_bytes=None, max_packages=None, batch_bytes=BATCH_BYTES, owns_socket=True):
        self.closing = False
        self.corked = False
        self.queued_bytes = 0          # queued packages plus bytes a direct write left over
        self._sock = sock
        self._os_sock = os_socket(sock)
        self._on_error = on_error
        self._on_overflow = on_overflow
        self._frame = frame
        self._frame_batch = frame_batch or b"".join
        self._max_bytes = _INF if max_bytes is None else max_bytes
        self._max_packages = _INF if max_packages is None else max_packages
        self._batch_bytes = batch_bytes
        self._owns_socket = owns_socket
        self._queue = None             # a deque once something had to queue
        self._control = None           # framed bytes to send before the next batch (a pong)
        self._unsent = None            # framed bytes a direct write left for the writer
        self._busy = False             # the writer is inside sendall: direct writes must wait
        self._last = b""
        self._greenlet = None
        self._wakeup = None            # made with the writer greenlet
        self._done = None              # made when someone waits for the end
        self._ended = False
        self._flush_timer = None

    # ---- writing -----------------------------------------------------------------------------

    def write(self, data):
        """Send or queue one whole package; never blocks. False once closing or closed."""
        if self.closing:
            return False
        size = self.queued_bytes + len(data)
        if size > self._max_bytes:
            self._on_overflow()
            return False
        if _held is not None and not self.corked and getcurrent() is _holder:
            self.corked = True
            _held.append(self)
        queue = self._queue
        if (self._os_sock is not None and not queue and not self._busy and self._unsent is None
                and not self.corked):
            frame = self._frame
            return self._write_now(data if frame is None else frame(data))
        if queue is None:
            queue = self._queue = deque()
        queue.append(data)
        self.queued_bytes = size
        if len(queue) > self._max_packages:
            self._on_overflow()
            return False
        if not self.corked:
            self._wake()
        return True

    def control(self, frame):
        """Send already-framed bytes before the next batch. Only the latest is kept: RFC 6455
        5.5.3 allows answering just the latest ping, so a ping flood cannot grow a list."""
        if not self.closing:
            self._control = frame
            self._wake()

    def cork(self):
        """Hold writes in the queue until `uncork`."""
        self.corked = True

    def uncork(self):
        """Send what was held: now, as one write, while the socket is idle; else by the writer."""
        self.corked = False
        queue = self._queue
        if not queue or self.closing:
            return
        if self._os_sock is not None and not self._busy and self._unsent is None:
            if len(queue) == 1:
                data = queue.popleft()
                frame = self._frame
                if frame is not None:
                    data = frame(data)
            else:
                parts = list(queue)
                queue.clear()
                data = self._frame_batch(parts)
            self.queued_bytes = 0
            self._write_now(data)
        else:
            self._wake()

    def _write_now(self, data):
        if self._control is not None:
            data = self._take_control() + data
        try:
            sent = self._os_sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._fail("send failed: %s" % (exc.strerror or exc))
            return False
        if sent < len(data):
            rest = data[sent:]
            self._unsent = rest
            self.queued_bytes += len(rest)
            self._wake()
        return True

    def _wake(self):
        if self._greenlet is None:
            self._start_writer()
        self._wakeup.set()

    def _start_writer(self):
        self._wakeup = Event()
        if self._queue is None:
            self._queue = deque()
        self._greenlet = gevent.spawn(self._run)
        return self._greenlet

    # ---- the writer greenlet -----------------------------------------------------------------

    def _run(self):
        queue = self._queue
        wakeup = self._wakeup
        sock = self._sock
        frame = self._frame
        frame_batch = self._frame_batch
        batch_bytes = self._batch_bytes
        try:
            while True:
                if self._unsent is not None:
                    data, self._unsent = self._unsent, None
                    self._send(sock, data)
                    self.queued_bytes -= len(data)
                elif queue:
                    data = queue.popleft()
                    size = len(data)
                    if queue and size < batch_bytes:
                        parts = [data]
                        while queue and size < batch_bytes:
                            item = queue.popleft()
                            parts.append(item)
                            size += len(item)
                        data = frame_batch(parts)
                    elif frame is not None:
                        data = frame(data)
                    self.queued_bytes -= size
                    if self._control is not None:
                        data = self._take_control() + data
                    self._send(sock, data)
                elif self._control is not None:
                    self._send(sock, self._take_control())
                elif self.closing:
                    if self._last:
                        self._send(sock, self._last)
                    break
                else:
                    wakeup.clear()
                    if not queue and self._control is None and not self.closing \
                            and self._unsent is None:
                        wakeup.wait()
        except OSError as exc:
            self._fail("send failed: %s" % (exc.strerror or exc))
        except gevent.GreenletExit:
            pass
        finally:
            self._stop_flush_timer()
            self._end()

    def _send(self, sock, data):
        self._busy = True
        sock.sendall(data)
        self._busy = False

    def _take_control(self):
        data, self._control = self._control, None
        return data

    def _fail(self, reason):
        if not self.closing:
            self.closing = True
            self._on_error(reason)

    def _end(self):
        if self._queue:
            self._queue.clear()
        self.queued_bytes = 0
        self._unsent = self._control = None
        if self._owns_socket:
            try:
                self._sock.close()
            except OSError:
                pass
        self._ended = True
        if self._done is not None:
            self._done.set()

    # ---- closing -----------------------------------------------------------------------------

    @property
    def running(self):
        """The writer greenlet exists and has not ended."""
        return self._greenlet is not None and not self._greenlet.dead

    def close(self, flush=True, timeout=None, last=b""):
        """Stop accepting writes. `flush`: send the queue, then `last`, within `timeout` seconds
        (None: no limit), from the writer greenlet. Not `flush` (also after a flushing close):
        drop what is queued and stop the writer now. Safe to call repeatedly and from callbacks
        that the writer itself runs."""
        greenlet = self._greenlet
        if flush and not self.closing:
            self.closing = True
            self._last = last
            if greenlet is None:
                if not (self._queue or self._unsent is not None or self._control is not None
                        or last):
                    self._end()        # nothing to flush: no greenlet just to close
                    return
                greenlet = self._start_writer()
            elif greenlet.dead:
                return
            if timeout is not None:
                self._flush_timer = gevent.get_hub().loop.timer(timeout)
                self._flush_timer.start(greenlet.kill, gevent.GreenletExit, False)
            self._wakeup.set()
            return
        self.closing = True
        if self._ended:
            return
        if self._queue:
            self._queue.clear()
        self.queued_bytes = 0
        if greenlet is None:
            self._end()
        elif greenlet is not gevent.getcurrent():
            has_run = greenlet.gr_frame is not None
            greenlet.kill(block=False)    # its finally ends it (and closes an owned socket) ...
            if not has_run:
                self._end()               # ... but one killed before it ran never runs at all

    def wait(self, timeout=None):
        """Wait until the writer has ended (after `close`); True if it has."""
        if self._ended:
            return True
        if self._done is None:
            self._done = Event()
        return self._done.wait(timeout)

    def _stop_flush_timer(self):
        timer = self._flush_timer
        if timer is not None:
            self._flush_timer = None
            timer.stop()
            timer.close()
