"""zpomelo.socket_writer.SocketWriter on real loopback TCP pairs: partial writes, the queue limits,
corking, control frames, closing with and without a flush, and a peer that goes away."""
import socket as stdlib_socket
import struct

import gevent
import pytest
from gevent import socket

from zpomelo.socket_writer import SocketWriter, hold_writes, release_writes
from zpomelo.testing import wait_until

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def pair():
    """(server side, client side) of a loopback TCP connection, small buffers so they fill."""
    listener = socket.socket()
    # Set before the handshake: shrinking a receive window afterwards stalls loopback TCP.
    listener.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    near = socket.socket()
    near.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, 4096)
    near.connect(listener.getsockname())
    far, _ = listener.accept()
    listener.close()
    yield near, far
    near.close()
    far.close()


class Events:
    def __init__(self):
        self.errors = []
        self.overflows = 0

    def on_error(self, reason):
        self.errors.append(reason)

    def on_overflow(self):
        self.overflows += 1


def read_exactly(sock, size, timeout=10):
    data = b""
    with gevent.Timeout(timeout):
        while len(data) < size:
            chunk = sock.recv(65536)
            assert chunk, "EOF after %d of %d bytes" % (len(data), size)
            data += chunk
    return data


def read_to_eof(sock, timeout=10):
    data = b""
    with gevent.Timeout(timeout):
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk


def packages(count, size):
    return [bytes([i % 251]) * size for i in range(count)]


def test_a_write_the_kernel_only_partly_takes_is_finished_by_the_writer_in_order(pair):
    near, far = pair
    events = Events()
    writer = SocketWriter(near, events.on_error, events.on_overflow)
    big = bytes(range(256)) * 4096          # 1 MiB: far more than the socket buffers hold
    assert writer.write(big)
    assert writer.running                    # the rest went to the writer greenlet ...
    assert writer._unsent is not None and 0 < writer.queued_bytes < len(big)
    small = packages(50, 100)
    for pkg in small:
        assert writer.write(pkg)            # ... and these queue behind it, never before it
    expected = big + b"".join(small)
    assert read_exactly(far, len(expected)) == expected
    wait_until(lambda: writer.queued_bytes == 0, message="the queue to drain")
    # Idle again: the next write goes straight to the socket.
    assert writer.write(b"after")
    assert read_exactly(far, 5) == b"after"
    assert events.errors == [] and events.overflows == 0


def test_queued_writes_go_out_in_batches_of_batch_bytes(pair):
    near, far = pair
    batches = []

    def frame_batch(parts):
        batches.append(len(parts))
        return b"".join(parts)

    writer = SocketWriter(near, Events().on_error, Events().on_overflow,
                          frame_batch=frame_batch, batch_bytes=1000)
    big = b"B" * 500000
    writer.write(big)                        # partly written: the writer owns the socket now
    sent = packages(40, 100)
    for pkg in sent:
        writer.write(pkg)
    assert read_exactly(far, len(big) + 4000) == big + b"".join(sent)
    assert batches == [10, 10, 10, 10]


def test_over_max_bytes_calls_on_overflow_once_and_refuses_later_writes(pair):
    near, far = pair
    events = Events()
    closed = []

    def on_overflow():
        events.on_overflow()
        closed.append(True)
        writer.close(flush=False)            # what the connector does

    writer = SocketWriter(near, events.on_error, on_overflow, max_bytes=64 * 1024)
    accepted = 0
    with gevent.Timeout(10):
        while writer.write(b"x" * 1024):    # the far side never reads
            accepted += 1
    assert events.overflows == 1 and closed == [True]
    assert accepted >= 64                    # the kernel buffers took some, 64 KiB queued
    assert writer.closing and not writer.write(b"more")
    assert events.overflows == 1
    assert writer.wait(5)
    assert writer.queued_bytes == 0
    far.settimeout(5)
    data = read_to_eof(far)                  # the owned socket was closed: EOF, not a hang
    assert len(data) <= accepted * 1024


def test_over_max_packages_calls_on_overflow(pair):
    near, _far = pair
    events = Events()
    writer = SocketWriter(near, events.on_error, events.on_overflow, max_packages=100)
    writer.cork()                            # everything queues
    results = [writer.write(b"p") for _ in range(101)]
    assert results == [True] * 100 + [False]
    assert events.overflows == 1


def test_close_with_flush_sends_the_queue_then_last_then_closes(pair):
    near, far = pair
    events = Events()
    writer = SocketWriter(near, events.on_error, events.on_overflow)
    sent = packages(200, 1000)               # 200 KB: most of it must wait for the reader
    for pkg in sent:
        assert writer.write(pkg)
    assert writer.queued_bytes > 0
    writer.close(flush=True, timeout=10, last=b"GOODBYE")
    assert not writer.write(b"late")         # closing: nothing new is taken
    assert read_to_eof(far) == b"".join(sent) + b"GOODBYE"
    assert writer.wait(5)
    assert events.errors == []


def test_close_with_flush_gives_up_after_its_timeout(pair):
    near, far = pair
    writer = SocketWriter(near, Events().on_error, Events().on_overflow)
    for pkg in packages(200, 1000):          # the far side never reads
        writer.write(pkg)
    writer.close(flush=True, timeout=0.3, last=b"GOODBYE")
    assert writer.wait(5)                    # ended by the flush timer, not by the peer
    assert writer.queued_bytes == 0
    data = read_to_eof(far)
    assert not data.endswith(b"GOODBYE")


def test_close_without_flush_drops_the_queue_at_once(pair):
    near, far = pair
    writer = SocketWriter(near, Events().on_error, Events().on_overflow)
    for pkg in packages(200, 1000):
        writer.write(pkg)
    writer.close(flush=False)
    assert writer.wait(5)
    assert writer.queued_bytes == 0
    assert len(read_to_eof(far)) < 200 * 1000


def test_close_with_nothing_queued_needs_no_greenlet(pair):
    near, far = pair
    writer = SocketWriter(near, Events().on_error, Events().on_overflow)
    assert writer.write(b"hello")
    assert not writer.running
    writer.close(flush=True, timeout=1)
    assert writer.wait(0) and not writer.running
    assert read_to_eof(far) == b"hello"


def test_a_socket_the_writer_does_not_own_stays_open(pair):
    near, far = pair
    writer = SocketWriter(near, Events().on_error, Events().on_overflow, owns_socket=False)
    writer.write(b"a" * 300000)
    writer.close(flush=True, timeout=10, last=b"!")
    assert read_exactly(far, 300001)[-1:] == b"!"
    assert writer.wait(5)
    near.sendall(b"still open")              # the client closes it itself, later
    assert read_exactly(far, 10) == b"still open"


def test_cork_holds_writes_and_uncork_sends_them_as_one_frame(pair):
    near, far = pair
    batches = []

    def frame_batch(parts):
        batches.append(list(parts))
        return b"[" + b"".join(parts) + b"]"

    writer = SocketWriter(near, Events().on_error, Events().on_overflow,
                          frame=lambda pkg: b"<" + pkg + b">", frame_batch=frame_batch)
    writer.cork()
    for pkg in (b"a", b"b", b"c"):
        assert writer.write(pkg)
    assert writer.queued_bytes == 3 and not writer.running
    writer.uncork()
    assert batches == [[b"a", b"b", b"c"]]
    assert writer.write(b"d")
    assert read_exactly(far, 5 + 3) == b"[abc]<d>"


def test_held_writes_of_one_greenlet_leave_as_one_frame_per_writer_at_release(pair):
    near, far = pair
    near2, far2 = socket.socketpair()
    batches = []

    def frame_batch(parts):
        batches.append(list(parts))
        return b"[" + b"".join(parts) + b"]"

    frame = lambda pkg: b"<" + pkg + b">"   # noqa: E731
    writers = [SocketWriter(sock, Events().on_error, Events().on_overflow, frame=frame,
                            frame_batch=frame_batch) for sock in (near, near2)]
    others = []
    assert hold_writes()
    try:
        assert not hold_writes()            # a batch is held already: its holder releases
        for pkg in (b"a", b"b", b"c"):
            for writer in writers:
                assert writer.write(pkg)
        assert all(w.corked and w.queued_bytes == 3 for w in writers)
        # another greenlet's write corks nothing; to a held writer it queues behind the batch
        gevent.spawn(lambda: others.append(writers[1].write(b"x"))).join(5)
        assert others == [True] and writers[1].queued_bytes == 4
    finally:
        release_writes()
    assert batches == [[b"a", b"b", b"c"], [b"a", b"b", b"c", b"x"]]
    assert not any(w.corked for w in writers)
    assert writers[0].write(b"d")           # no batch held: straight out, framed alone
    assert read_exactly(far, 5 + 3) == b"[abc]<d>"
    assert read_exactly(far2, 6) == b"[abcx]"
    assert hold_writes()                     # released: the next batch can be held
    release_writes()
    near2.close()
    far2.close()


def test_control_frames_go_first_and_only_the_latest_is_kept(pair):
    near, far = pair
    writer = SocketWriter(near, Events().on_error, Events().on_overflow)
    writer.control(b"PONG1")
    writer.control(b"PONG2")                 # a ping flood keeps one answer, not a list
    assert writer.write(b"data")             # before the writer greenlet ran: sent together
    assert read_exactly(far, 9) == b"PONG2data"
    writer.control(b"PONG3")                 # nothing else to send: the writer sends it
    assert read_exactly(far, 5) == b"PONG3"


def test_a_peer_that_goes_away_calls_on_error_once(pair):
    near, far = pair
    events = Events()
    writer = SocketWriter(near, events.on_error, events.on_overflow)
    far.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_LINGER, struct.pack("ii", 1, 0))
    far.close()                              # RST on close: the next writes fail
    with gevent.Timeout(10):
        while writer.write(b"x" * 1000):
            gevent.sleep(0.001)
    assert len(events.errors) == 1 and events.errors[0].startswith("send failed")
    assert not writer.write(b"more") and len(events.errors) == 1
