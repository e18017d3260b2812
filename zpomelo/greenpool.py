"""A bounded set of raw greenlets: what gevent.pool.Pool does, for a fraction of the cost.

Each job runs in a raw greenlet (``gevent.spawn_raw``: no Greenlet object, no links); the pool
only counts them. ``spawn`` waits while the pool is full, so the caller (a reader loop) applies
back-pressure instead of queueing without bound. Jobs must catch their own exceptions: an
escaping one is reported by the hub and the job's slot is freed.
"""
import gevent
from gevent.event import Event


class GreenPool:
    def __init__(self, size):
        if size < 1:
            raise ValueError("a pool needs at least one slot, got %r" % (size,))
        self.size = size
        self.running = set()
        self._free = Event()
        self._idle = Event()
        self._idle.set()
        self.waits = 0

    def __len__(self):
        return len(self.running)

    def full(self):
        return len(self.running) >= self.size

    def spawn(self, fn, *args):
        """Run ``fn(*args)`` in a new greenlet; waits for a free slot while the pool is full."""
        while len(self.running) >= self.size:
            self.waits += 1
            self._free.clear()
            self._free.wait()
        self._idle.clear()
        self.running.add(gevent.spawn_raw(self._run, fn, args))

    def _run(self, fn, args):
        try:
            fn(*args)
        finally:
            running = self.running
            running.discard(gevent.getcurrent())
            if not self._free.is_set():
                self._free.set()
            if not running:
                self._idle.set()

    def join(self, timeout=None):
        """True when every job finished within ``timeout``."""
        return self._idle.wait(timeout)

    def kill(self):
        """Abandon the running jobs (GreenletExit thrown into each)."""
        for job in list(self.running):
            gevent.kill(job)
        self.running.clear()
        self._idle.set()
        self._free.set()
