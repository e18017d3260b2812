"""Built-in handler filters: serial (per-session FIFO), timeout, toobusy (loop lag)."""
import logging
import time

import gevent
from gevent.lock import Semaphore

from zpomelo.errors import CODE_FAIL, HandlerError

logger = logging.getLogger(__name__)


def _session_key(session):
    return (session.frontend_id, session.id)


class SerialFilter:
    """Runs the requests of one session one at a time, in arrival order.

    A waiting request holds no resources but its greenlet; ``timeout`` bounds the wait.
    """

    def __init__(self, timeout=30.0):
        self.timeout = timeout
        self._locks = {}  # session key -> [Semaphore, users]

    def before(self, route, msg, session):
        key = _session_key(session)
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = [Semaphore(1), 0]
        entry[1] += 1
        if not entry[0].acquire(timeout=self.timeout):
            self._drop(key, entry)
            raise HandlerError({"code": CODE_FAIL, "error": "timed out waiting for earlier requests"})
        return None

    def after(self, route, msg, session, response, error):
        key = _session_key(session)
        entry = self._locks.get(key)
        if entry is None:
            return
        entry[0].release()
        self._drop(key, entry)

    def _drop(self, key, entry):
        entry[1] -= 1
        if entry[1] <= 0:
            self._locks.pop(key, None)


class HandlerTimeout(Exception):
    pass


class TimeoutFilter:
    """Answers ``{"code": 500, "error": "timeout"}`` for a handler still running after ``seconds``."""

    def __init__(self, seconds=3.0):
        self.seconds = seconds
        self._timers = {}

    def before(self, route, msg, session):
        timer = gevent.Timeout(self.seconds, HandlerError(
            {"code": CODE_FAIL, "error": "handler %s timed out after %.3gs" % (route, self.seconds)}))
        timer.start()
        self._timers[gevent.getcurrent()] = timer
        return None

    def after(self, route, msg, session, response, error):
        timer = self._timers.pop(gevent.getcurrent(), None)
        if timer is not None:
            timer.close()


class LagMonitor:
    """Measures how late the gevent loop wakes a sleeping greenlet: the loop's lag."""

    def __init__(self, interval=0.05):
        self.interval = interval
        self.lag = 0.0
        self._greenlet = None

    def start(self):
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def stop(self):
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _run(self):
        while True:
            started = time.monotonic()
            gevent.sleep(self.interval)
            late = time.monotonic() - started - self.interval
            # smoothed, so one hiccup does not reject a burst of requests
            self.lag = max(late, 0.0) * 0.5 + self.lag * 0.5


class TooBusyFilter:
    """Rejects requests while the loop lags more than ``max_lag`` seconds (node-toobusy's idea).

    Its lag monitor is a greenlet: the application starts it with the server and stops it with the
    server (``start``/``stop``, called for every filter that has them); used on its own, the first
    request starts it.
    """

    def __init__(self, max_lag=0.07, monitor=None):
        self.max_lag = max_lag
        self.monitor = monitor or LagMonitor()
        self._state = None   # None (never started), "started", "stopped" (not restarted lazily)

    def start(self):
        if self._state != "started":
            self._state = "started"
            self.monitor.start()

    def stop(self):
        if self._state == "started":
            self.monitor.stop()
        self._state = "stopped"

    def before(self, route, msg, session):
        if self._state is None:
            self.start()
        if self.monitor.lag > self.max_lag:
            raise HandlerError({"code": CODE_FAIL, "error": "server too busy"})
        return None


def serial(timeout=30.0):
    return SerialFilter(timeout)


def timeout(seconds=3.0):
    return TimeoutFilter(seconds)


def toobusy(max_lag=0.07):
    return TooBusyFilter(max_lag)
