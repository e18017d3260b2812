"""Bounded waits on AsyncResults, all timed by one periodic check instead of a Timeout each.

Every commit waits for the store, and a gevent ``Timeout`` per wait (an object, a timer started
and stopped on the loop) cost about a tenth of a transaction's CPU. The bound is a safety net
(a store that never answers), not a schedule, so it may fire up to one ``period`` late: one
greenlet looks at the waits ``period`` times a second and throws ``WaitExpired`` into those past
their deadline, through the hub (as a Timeout does), cancelled if the result arrived first.
"""
import time

import gevent
from gevent import getcurrent, get_hub


class WaitExpired(Exception):
    """Thrown into a waiting greenlet whose deadline passed (never escapes ``SharedDeadlines.wait``)."""

    def __init__(self, record):
        super().__init__("the wait's deadline passed")
        self.record = record


class SharedDeadlines:
    def __init__(self, period=0.25):
        self.period = period
        self._waits = {}        # greenlet -> [deadline, pending throw callback or None]
        self._checker = None
        self.closed = False

    def wait(self, result, timeout):
        """Wait until ``result`` is ready (True) or about ``timeout`` seconds passed (False).
        Any other exception thrown into the waiting greenlet propagates as it is. (The caller
        has seen that ``result`` is not ready yet: Database._wait returns a ready one at once.)"""
        if self._checker is None and not self.closed:
            self._checker = gevent.spawn(self._check_loop)
        greenlet = getcurrent()
        record = [time.monotonic() + timeout, None]
        self._waits[greenlet] = record
        try:
            result.wait()
        except WaitExpired as exc:
            if exc.record is not record:
                raise
            return False
        finally:
            if self._waits.get(greenlet) is record:
                del self._waits[greenlet]
            if record[1] is not None:
                record[1].stop()   # the result won the race: the throw must not reach later code
        return True

    def _check_loop(self):
        while not self.closed:
            gevent.sleep(self.period)
            self.expire(time.monotonic())

    def expire(self, now):
        """Throw WaitExpired (through the hub) into every wait whose deadline is before ``now``."""
        loop = get_hub().loop
        for greenlet, record in list(self._waits.items()):
            if record[0] <= now and record[1] is None:
                record[1] = loop.run_callback(greenlet.throw, WaitExpired(record))

    def close(self):
        self.closed = True
        if self._checker is not None:
            self._checker.kill(block=False)
            self._checker = None
