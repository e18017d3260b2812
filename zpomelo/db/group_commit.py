"""Group commit: the commits waiting at one moment are applied together by one writer greenlet.

Both engines pay one round trip or one fsync per batch instead of per commit; what a batch means
is the engine's (one SQLite transaction, one Redis pipeline). The engine gives ``apply_batch``:
``[(checks, writes), ...] -> [versions or an exception, ...]``, one outcome per commit, in order;
an exception raised by ``apply_batch`` itself becomes every commit's outcome (unknown, usually).
"""
import gevent
from gevent.event import AsyncResult, Event


class GroupCommitter:
    def __init__(self, apply_batch, max_batch, closed_error):
        self.max_batch = max_batch
        self.closed = False
        self._apply_batch = apply_batch
        self._closed_error = closed_error   # fn() -> the exception for a commit after close()
        self._queue = []                    # (checks, writes), what apply_batch takes
        self._results = []                  # their AsyncResults, in the same order
        self._wakeup = Event()
        self._writer = gevent.spawn(self._write_loop)

    def submit(self, checks, writes):
        """An AsyncResult that gets the new versions, or the commit's exception."""
        result = AsyncResult()
        if self.closed:
            result.set_exception(self._closed_error())
            return result
        self._queue.append((checks, writes))
        self._results.append(result)
        self._wakeup.set()
        return result

    def _write_loop(self):
        while True:
            self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch = self._queue[:self.max_batch]
                results = self._results[:len(batch)]
                del self._queue[:len(batch)], self._results[:len(batch)]
                try:
                    outcomes = self._apply_batch(batch)
                except BaseException as exc:
                    outcomes = [exc] * len(batch)
                for result, outcome in zip(results, outcomes):
                    if isinstance(outcome, BaseException):
                        result.set_exception(outcome)
                    else:
                        result.set(outcome)
            if self.closed:
                return

    def close(self, timeout):
        """Refuse new commits, finish the queued ones (up to ``timeout`` seconds)."""
        if self.closed:
            return False
        self.closed = True
        self._wakeup.set()
        self._writer.join(timeout=timeout)
        return True
