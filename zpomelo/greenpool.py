"""A bounded set of raw greenlets: what gevent.pool.Pool does, for a fraction of the cost.

Each job runs in a raw greenlet (``gevent.spawn_raw``: no Greenlet object, no links); the pool
only counts them. ``spawn`` waits while the pool is full, so the caller (a reader loop) applies
back-pressure instead of queueing without bound. Jobs must catch their own exceptions: an
escaping one is reported by the hub and the job's slot is freed.

Greenlets are reused: a job's greenlet that finishes parks (up to ``keep_idle`` of them) and runs
the next job. A new greenlet costs about 15-30 µs on CPython 3.11 (each one maps, touches and
unmaps its own 16 KB frame stack), which was the largest single cost of a forwarded request on a
backend (INTERNALS.md, "Forward path cost"). A parked greenlet starts every job with a fresh
contextvars context; a job must not leave a started ``gevent.Timeout`` behind (use it as a
context manager): a stale one that fires while the greenlet is parked is ignored, one that fires
during a later job interrupts that job. A greenlet whose job raised is not reused. What a layer
above binds to the greenlet itself (a store transaction) is cleaned by its ``after_each_job``
hook, so it cannot reach the next job.
"""
import logging

import gevent
from gevent import GreenletExit
from gevent.event import Event
from gevent.hub import get_hub

logger = logging.getLogger(__name__)

KEEP_IDLE = 64
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
        self.running = set()
        self._parked = []           # finished greenlets waiting (in the hub) for a job
        self._keep_idle = min(keep_idle, size)
        self._free = Event()
        self._idle = Event()
        self._idle.set()
        self.waits = 0

    def __len__(self):
        return len(self.running)

    def full(self):
        return len(self.running) >= self.size

    def spawn(self, fn, *args):
        """Run ``fn(*args)`` in a greenlet of its own; waits for a free slot while the pool is full."""
        while len(self.running) >= self.size:
            self.waits += 1
            self._free.clear()
            self._free.wait()
        self._idle.clear()
        parked = self._parked
        if parked:
            worker = parked.pop()
            self.running.add(worker)
            get_hub().loop.run_callback(worker.switch, _TASK, fn, args)
        else:
            self.running.add(gevent.spawn_raw(self._work, fn, args))

    def _work(self, fn, args):
        current = gevent.getcurrent()
        hub = get_hub()
        while True:
            try:
                fn(*args)
            finally:
                for hook in _after_job:
                    try:
                        hook(current)
                    except Exception:
                        logger.exception("an after-job hook failed (%r)", hook)
                self._finished(current)
            if len(self._parked) >= self._keep_idle:
                return
            fn = args = None
            current.gr_context = None     # the next job starts with a fresh contextvars context
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
                if type(task) is tuple and len(task) == 3 and task[0] is _TASK:
                    _, fn, args = task
                    break

    def _finished(self, current):
        running = self.running
        running.discard(current)
        if not self._free.is_set():
            self._free.set()
        if not running:
            self._idle.set()

    def join(self, timeout=None):
        """True when every job finished within ``timeout``."""
        return self._idle.wait(timeout)

    def kill(self):
        """Abandon the running jobs (GreenletExit thrown into each) and end the parked greenlets."""
        parked, self._parked = self._parked, []
        for job in list(self.running) + parked:
            gevent.kill(job)
        self.running.clear()
        self._idle.set()
        self._free.set()
