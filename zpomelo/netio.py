"""Socket helpers shared by the connector and the client (gevent sockets only)."""
import errno
import select

from gevent import getcurrent, monkey
from gevent.hub import get_hub
from gevent.ssl import SSLSocket

_poll = monkey.get_original("select", "poll")     # never yields: callable from the hub itself


def os_socket(sock):
    """The OS socket under a gevent socket, for calls that must not yield; None for TLS (an SSL
    read or write may need the other direction) or a socket without one."""
    return None if isinstance(sock, SSLSocket) else getattr(sock, "_sock", None)


def make_receiver(sock):
    """``recv(size)`` for a reader loop that waits for readability first unless the last read
    filled the buffer. Request/response traffic finds the socket empty right after each read, so
    gevent's try-first recv would pay a failed system call and an exception every time."""
    os_sock = os_socket(sock)
    if os_sock is None:
        return sock.recv
    recv = os_sock.recv
    last_was_full = [True]
    hub = get_hub()

    def wait_readable():
        # The socket's own read watcher switches straight back to this greenlet: no Waiter and
        # no timeout object per read (gevent's sock._wait makes both), and a shallower stack
        # to save while the connection is idle.
        event = sock._read_event  # None once the socket is closed: never wait on a dead watcher
        if event is None:
            raise OSError(errno.EBADF, "the socket is closed")
        if event.callback is not None:
            sock._wait(event)     # someone else waits on it: let gevent report the misuse
            return
        event.start(getcurrent().switch)
        try:
            hub.switch()
        finally:
            event.stop()

    def receive(size):
        if not last_was_full[0]:
            wait_readable()
        while True:
            try:
                data = recv(size)
            except (BlockingIOError, InterruptedError):
                wait_readable()
                continue
            last_was_full[0] = len(data) == size
            return data
    return receive


def input_waiting(sock):
    """Whether bytes (or the peer's EOF) wait unread on ``sock``; never blocks or yields.

    Heartbeat deadlines ask this before blaming the peer. A process that was itself stalled past
    a deadline (a loaded machine, a long pause) runs its due timers before it reads its sockets
    (libev invokes the newest pending watchers first), so a heartbeat that arrived in time may
    still wait in the kernel when the deadline's timer fires."""
    try:
        fd = sock.fileno()
    except OSError:
        return False
    if fd < 0:
        return False
    poller = _poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
