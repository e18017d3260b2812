"""PushInbox: a client's push handlers by route, and a bounded queue of the other pushes."""
import logging
import time
from collections import deque

from gevent.event import Event

from zpomelo.client.errors import ClientTimeout, ConnectionClosed

logger = logging.getLogger(__name__)


class PushInbox:
    """Pushes with an `on` handler go to it (in the reader greenlet); others wait in a queue of
    at most `size`, the oldest pushed out (and counted in `dropped`) when it is full, so a test
    or bot that never calls `wait_push` cannot grow without bound."""

    def __init__(self, size):
        self.handlers = {}             # route -> [fn(body)]
        self.dropped = 0
        self._queue = deque(maxlen=size)   # (route, body)
        self._arrived = Event()

    def on(self, route, fn):
        self.handlers.setdefault(route, []).append(fn)

    def deliver(self, route, body, owner):
        handlers = self.handlers.get(route)
        if handlers:
            for fn in handlers:
                try:
                    fn(body)
                except Exception:
                    logger.exception("%r: push handler for %r failed", owner, route)
            return
        queue = self._queue
        if len(queue) == queue.maxlen:
            self.dropped += 1
        queue.append((route, body))
        self._arrived.set()

    def wake(self):
        """Wake every waiter (the connection closed)."""
        self._arrived.set()

    def wait(self, route, timeout, closed_reason):
        """(route, body) of the oldest queued push on `route` (None: any), waiting up to
        `timeout` seconds. `closed_reason()` is None while the connection is open."""
        deadline = time.monotonic() + timeout
        queue = self._queue
        while True:
            for i, item in enumerate(queue):
                if route is None or item[0] == route:
                    del queue[i]
                    return item
            reason = closed_reason()
            if reason is not None:
                raise ConnectionClosed("no push %r queued and the connection is closed (%s)"
                                       % (route, reason), reason)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClientTimeout("no push %s within %s s"
                                    % (repr(route) if route else "", timeout))
            self._arrived.clear()
            self._arrived.wait(remaining)
