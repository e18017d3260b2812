"""Run blocking store calls without blocking the gevent hub; every call returns an AsyncResult.

SQLite's C calls always block, so they go to native threads. A socket client (redis-py) is
cooperative when the process is monkey-patched (servers are) and goes to a thread otherwise
(tests, scripts). Either way the caller waits on an AsyncResult it may stop waiting for without
tearing the call in half.
"""
import gevent
from gevent import monkey
from gevent.event import AsyncResult
from gevent.threadpool import ThreadPool


class Offloader:
    def __init__(self, threads=4, cooperative=None):
        self._pool = ThreadPool(threads)
        if cooperative is None:
            cooperative = monkey.is_module_patched("socket")
        self.cooperative = cooperative

    def thread(self, fn, *args):
        """``fn(*args)`` in a native thread."""
        result = AsyncResult()
        self._pool.spawn(_capture, fn, args).rawlink(lambda r: _settle(r.value, result))
        return result

    def call(self, fn, *args):
        """``fn(*args)`` in a greenlet when sockets are cooperative, else in a native thread."""
        if not self.cooperative:
            return self.thread(fn, *args)
        result = AsyncResult()
        gevent.spawn(_capture, fn, args).rawlink(lambda g: _settle(g.value, result))
        return result

    def close(self):
        self._pool.kill()


def _capture(fn, args):
    """Run and return (ok, value): errors travel as values, never as a failed greenlet/thread
    (gevent would print those as unhandled)."""
    try:
        return True, fn(*args)
    except BaseException as exc:  # noqa: B902 - handed to the waiting greenlet as it is
        return False, exc


def _settle(outcome, target):
    if outcome is None:
        target.set_exception(RuntimeError("the store call was killed"))
    elif outcome[0]:
        target.set(outcome[1])
    else:
        target.set_exception(outcome[1])
