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
        self._pool.spawn(fn, *args).rawlink(lambda r: _copy(r, result))
        return result

    def call(self, fn, *args):
        """``fn(*args)`` in a greenlet when sockets are cooperative, else in a native thread."""
        if not self.cooperative:
            return self.thread(fn, *args)
        result = AsyncResult()
        gevent.spawn(fn, *args).rawlink(lambda g: _copy(g, result))
        return result

    def close(self):
        self._pool.kill()


def _copy(source, target):
    if source.successful():
        target.set(source.value)
    else:
        target.set_exception(source.exception)
