"""What drives a connection that has no greenlet of its own: hub callbacks.

Its socket's read watcher (``_readable``) hands the reads to a reused worker greenlet
(``_serve_reads``, connector.workers), and its deadline timer (``start_deadline``) interrupts the
worker serving it, or closes it from a worker while it is idle. Also the connection states and
the deadline exceptions, which both sides use. These functions reach into a Connection's private
fields on purpose: they are its per-read path, kept as plain functions (no method lookups).
"""
import enum
from time import monotonic

import gevent
from gevent import getcurrent
from greenlet import greenlet

from zpomelo.connector.workers import TASK
from zpomelo.netio import input_waiting

RECV_SIZE = 65536


class State(enum.IntEnum):
    INITED = 0
    WAIT_ACK = 1
    WORKING = 2
    CLOSED = 3


INITED, WAIT_ACK, WORKING, CLOSED = State.INITED, State.WAIT_ACK, State.WORKING, State.CLOSED


class Deadline(BaseException):
    """Thrown into a reader whose handshake or heartbeat deadline passed.

    A BaseException so that application code's ``except Exception`` cannot swallow it.
    """


class HandshakeTimeout(Deadline):
    reason = "handshake timeout"


class HeartbeatTimeout(Deadline):
    reason = "heartbeat timeout"


def start_deadline(seconds, exc_class, target):
    """A loop timer that, after ``seconds``, ends ``target``: a Connection (interrupted with
    ``exc_class`` in the greenlet serving it, or closed from a worker while it is idle), or any
    greenlet (``exc_class`` thrown into it)."""
    # repeat=seconds: libev's timer.again() re-arms only repeating timers (it stops one-shots)
    timer = gevent.get_hub().loop.timer(seconds, seconds)
    if isinstance(target, greenlet):
        timer.start(target.throw, exc_class)
    else:
        timer.start(_deadline_passed, target, exc_class)
    return timer


def _deadline_passed(conn, exc_class):
    """Timer callback (in the hub): interrupt the greenlet serving ``conn``, or close the idle
    connection from a worker (closing runs the frontend's close callbacks, which may block).

    Unless this process was late, not the client: the client gets one more period, once per
    arming (a heartbeat read meanwhile re-arms it). Late means the client's bytes wait unread (a
    process stalled past the deadline runs its due timers before its reads:
    netio.input_waiting), or this heartbeat timer itself ran over half a period late (the process
    was stalled, a loaded machine or a long pause, and cannot tell whether the client went
    silent: in a cluster run in one process, the client was stalled with it)."""
    timer = conn._deadline
    if not conn._deadline_graced and timer is not None and (
            _ran_late(conn) or input_waiting(conn._sock)):
        conn._deadline_graced = True
        timer.again(_deadline_passed, conn, exc_class)
        return
    worker = conn._worker
    if worker is not None:
        worker.throw(exc_class)
    elif conn.state is not CLOSED:
        conn._stop_deadline()
        conn._connector.workers.run(_expire, conn, exc_class.reason)


def _ran_late(conn):
    due = conn._deadline_due
    return due is not None and monotonic() - due > conn._config.heartbeat_timeout / 2


def _expire(conn, reason):
    conn._worker = getcurrent()
    try:
        conn.close(reason)
    finally:
        conn._worker = None


def _readable(conn):
    """The socket's read watcher callback (in the hub): serve the reads in a worker. This is
    ``workers.run(_serve_reads, conn)`` inlined: it runs for every read of every connection."""
    conn._sock._read_event.stop()
    workers = conn._connector.workers
    parked = workers.parked
    (parked.pop() if parked else workers.new()).switch(TASK, _serve_reads, conn, None)


def _serve_reads(conn, _arg):
    """Worker job: read what the socket holds now (it was readable), then arm its watcher again
    (or close the connection). One function, not several methods: the per-read path."""
    conn._worker = getcurrent()
    sock = conn._sock
    try:
        reason = None
        try:
            recv = sock._sock.recv
            feed = conn._feed
            while True:
                try:
                    data = recv(RECV_SIZE)
                except (BlockingIOError, InterruptedError):
                    break
                if not data:
                    reason = "client closed"
                    break
                reason = feed(data)
                # a short read most likely emptied the socket: wait for the watcher, not EAGAIN
                if reason is not None or conn.state is CLOSED or len(data) < RECV_SIZE:
                    break
        except BaseException as exc:    # noqa: B036 - GreenletExit and Deadline end it too
            reason = conn._reason_for(exc)
        if reason is not None:
            try:
                conn.close(reason)
            except Deadline:    # a deadline thrown in before close() stopped its timer
                pass
        elif conn.state is not CLOSED:
            event = sock._read_event
            if event is None:       # the socket was closed under us
                conn.close("socket error: the socket is closed")
            else:
                event.start(_readable, conn)
    finally:
        conn._worker = None
