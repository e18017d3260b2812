"""A bounded set of raw greenlets: what gevent.pool.Pool does, for a fraction of the cost.

Each job runs in a raw greenlet (no Greenlet object, no links); the pool only counts them.
``spawn`` waits while the pool is full, so the caller (a reader loop) applies back-pressure
instead of queueing without bound. Jobs must catch their own exceptions: an escaping one is
reported by the hub and the job's slot is freed.

Greenlets are reused: a job's greenlet that finishes takes the next queued job, or parks (up to
``keep_idle`` of them) until there is one. A new greenlet costs about 15-30 µs on CPython 3.11
(each one maps, touches and unmaps its own 16 KB frame stack), which was the largest single cost
of a forwarded request on a backend (INTERNALS.md, "Forward path cost"); handing each job to a
parked greenlet still made one per job beyond the ``keep_idle`` parked ones whenever a frame
brought more calls than that (an mmap/munmap pair per call at 800 calls in flight). Every job
starts with a fresh contextvars context; a job must not leave a started ``gevent.Timeout``
behind (use it as a context manager): a stale one that fires while the greenlet is parked is
ignored, one that fires during a later job interrupts that job. A greenlet whose job raised is
not reused. What a layer above binds to the greenlet itself (a store transaction) is cleaned by
its ``after_each_job`` hook, so it cannot reach the next job.
"""
import logging
import sys
from collections import deque
from time import perf_counter

import gevent
from gevent import GreenletExit
from gevent.event import Event
from gevent.hub import get_hub
from greenlet import getcurrent
from greenlet import greenlet as RawGreenlet

logger = logging.getLogger(__name__)

KEEP_IDLE = 64
# A burst of jobs runs at most this long before the loop polls sockets again (the rest start
# after the poll): what gevent's own callback loop allows a run of callbacks.
BURST_SECONDS = 0.005
_after_job = []     # fn(greenlet), run when any pooled job ends (after_each_job)


def after_each_job(fn):
    """Run ``fn(greenlet)`` whenever a job of any pool ends, before its greenlet may run another:
    for state a layer above keys by greenlet (zpomelo.db's current transaction)."""
    if fn not in _after_job:
        _after_job.append(fn)
_TASK = object()    # marks a switch that hands a parked greenlet its next job


class GreenPool:
    def __init__(self, size, keep_idle=KEEP_IDLE):
        if size < 1:
            raise ValueError("a pool needs at least one slot, got %r" % (size,))
        self.size = size
        self.running = set()        # greenlets between being started and parking (or ending)
        self._jobs = 0              # jobs spawned and not finished (queued or running)
        self._pending = deque()     # jobs not started yet, in spawn order
        self._starting = False      # _start_pending is scheduled (a loop callback or timer)
        self._burst_until = 0.0     # perf_counter() when the running burst must let the loop poll
        self._after_poll = None     # the zero timer that resumes a burst after the next poll
        self._parked = []           # finished greenlets waiting (in the hub) for a job
        self._keep_idle = min(keep_idle, size)
        self._free = Event()
        self._idle = Event()
        self._idle.set()
        self.waits = 0

    def __len__(self):
        return self._jobs

    def full(self):
        return self._jobs >= self.size

    def spawn(self, fn, *args):
        """Run ``fn(*args)`` in a pool greenlet; waits for a free slot while the pool is full.

        Jobs start in spawn order, from one loop callback per batch: each runs in a parked (or
        new) greenlet, and a greenlet whose job finished without blocking takes the next queued
        job itself. So a burst of jobs that do not block (a frame of RPC calls) needs one
        greenlet and no switch per job, and a new greenlet is made only while the others are
        blocked."""
        while self._jobs >= self.size:
            self.waits += 1
            self._free.clear()
            self._free.wait()
        self._jobs += 1
        self._idle.clear()
        self._pending.append((fn, args))
        if not self._starting:
            self._starting = True
            get_hub().loop.run_callback(self._start_pending)

    def _resume_after_poll(self):
        """The burst ran BURST_SECONDS: start the rest after the loop polled sockets."""
        if not self._starting:
            self._starting = True
            timer = self._after_poll
            if timer is None:
                timer = self._after_poll = get_hub().loop.timer(0.0)
            timer.start(self._start_pending)

    def _start_pending(self):
        """(The hub: a loop callback.) Start queued jobs until none is left or the burst has
        run BURST_SECONDS: a worker returns here when its job blocks or when it parks."""
        self._starting = False
        until = self._burst_until = perf_counter() + BURST_SECONDS
        pending = self._pending
        parked = self._parked
        running = self.running
        hub = get_hub()
        while pending:
            if perf_counter() >= until:
                self._resume_after_poll()
                return
            if parked:
                worker = parked.pop()
                running.add(worker)
                switch_args = (_TASK,)
            else:
                worker = RawGreenlet(self._work, hub)
                running.add(worker)
                switch_args = ()
            try:
                worker.switch(*switch_args)
            except Exception:   # an escaping job exception ends its greenlet; reported here
                hub.handle_error(worker, *sys.exc_info())

    def _work(self):
        current = getcurrent()
        hub = get_hub()
        pending = self._pending
        try:
            while True:
                while pending:
                    if perf_counter() >= self._burst_until:
                        self._resume_after_poll()   # the loop polls before the next job
                        break
                    fn, args = pending.popleft()
                    try:
                        fn(*args)
                    finally:
                        fn = args = None
                        for hook in _after_job:
                            try:
                                hook(current)
                            except Exception:
                                logger.exception("an after-job hook failed (%r)", hook)
                        self._job_done()
                    current.gr_context = None     # the next job starts with a fresh context
                if len(self._parked) >= self._keep_idle:
                    return
                self.running.discard(current)
                self._parked.append(current)
                while True:
                    try:
                        task = hub.switch()
                    except GreenletExit:
                        if current in self._parked:
                            self._parked.remove(current)
                        return
                    except BaseException:   # a stale timeout of an earlier job: nobody to tell
                        continue
                    if task is _TASK:       # _start_pending took us out of _parked
                        break
        finally:
            self.running.discard(current)

    def _job_done(self):
        if self._jobs > 0:      # kill() already forgot the jobs it abandoned
            self._jobs -= 1
        if not self._free.is_set():
            self._free.set()
        if not self._jobs:
            self._idle.set()

    def join(self, timeout=None):
        """True when every job finished within ``timeout``."""
        return self._idle.wait(timeout)

    def kill(self):
        """Drop the jobs not started, abandon the running ones (GreenletExit thrown into each)
        and end the parked greenlets."""
        self._pending.clear()
        if self._after_poll is not None:
            self._after_poll.stop()
            self._starting = False
        parked, self._parked = self._parked, []
        for job in list(self.running) + parked:
            gevent.kill(job)
        self.running.clear()
        self._jobs = 0
        self._idle.set()
        self._free.set()
