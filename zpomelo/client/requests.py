"""PendingRequests: one connection's requests still waiting for their response.

Each ends once: answered, failed (a body that does not decode, a timeout, the connection
closing) or abandoned by its caller. A blocked `request()` is a bare Waiter woken from the hub;
`request_async` has a callback. Deadlines are checked by one sweeper greenlet per connection
every `timeout`/8 (5 ms to 0.5 s), so no greenlet or timer is made per request.
"""
import logging
import time

import gevent
from gevent.event import Event
from gevent.hub import get_hub

from zpomelo.client.errors import RequestTimeout

logger = logging.getLogger(__name__)

MAX_REQUEST_ID = (1 << 31) - 1
_INF = float("inf")
_monotonic = time.monotonic


class PendingRequests:
    """Entries are (route, waiter | None, callback | None, deadline | None, timeout | None)."""

    def __init__(self, codec, owner):
        self.table = {}                # id -> entry
        self.last_id = 0
        self.closed = False
        self._codec = codec            # forgets the protobuf route of an id that ends unanswered
        self._owner = owner            # named in log lines
        self._run_soon = get_hub().loop.run_callback
        self._sweeper = None
        # The sweeper's tick; infinite while it idles (nothing pending), so the one comparison
        # `timeout < self._sweep_interval` per request both sets the tick and wakes it.
        self._sweep_interval = _INF
        self._sweep_tick = _INF
        self._sweep_wake = Event()

    def __len__(self):
        return len(self.table)

    def next_id(self):
        rid = self.last_id + 1
        if rid > MAX_REQUEST_ID:
            rid = 1                    # ids wrap within 1..2^31-1; 0 would mean "notify"
        self.last_id = rid
        return rid

    def add(self, rid, route, waiter, callback, timeout):
        if timeout:
            self.table[rid] = (route, waiter, callback, _monotonic() + timeout, timeout)
            if timeout < self._sweep_interval:
                self._start_sweeper(timeout)
        else:
            self.table[rid] = (route, waiter, callback, None, None)

    def abandon(self, rid):
        """The caller stopped waiting (its own timeout, a kill): forget the id."""
        if self.table.pop(rid, None) is not None:
            self._codec.forget(rid)

    def answer(self, rid, body):
        entry = self.table.pop(rid, None)
        if entry is None:
            logger.debug("%r: response to unknown or timed-out request %d", self._owner, rid)
        elif entry[1] is not None:
            self._run_soon(entry[1].switch, body)
        else:
            self._call(entry, None, body)

    def fail(self, rid, error):
        """Fail request `rid` with `error`; False if no such request is pending."""
        entry = self.table.pop(rid, None) if rid else None
        if entry is None:
            return False
        self._fail(entry, error)
        return True

    def fail_all(self, make_error):
        """The connection closed: fail every request, each with its own `make_error()`."""
        self.closed = True
        table, self.table = self.table, {}
        for entry in table.values():
            self._fail(entry, make_error())
        sweeper = self._sweeper
        if sweeper is not None and sweeper is not gevent.getcurrent():
            sweeper.kill(block=False)

    def reopen(self):
        """A resumed connection: take requests again (fail_all failed the old ones)."""
        self.closed = False
        self._sweeper = None
        self._sweep_interval = self._sweep_tick = _INF

    def _fail(self, entry, error):
        if entry[1] is not None:
            self._run_soon(entry[1].throw, error)
        else:
            self._call(entry, error, None)

    def _call(self, entry, error, body):
        try:
            entry[2](error, body)
        except Exception:
            logger.exception("%r: callback of request %r failed", self._owner, entry[0])

    # ---- deadlines ---------------------------------------------------------------------------

    def _start_sweeper(self, timeout):
        self._sweep_tick = min(self._sweep_tick, 0.5, max(0.005, timeout / 8.0))
        self._sweep_interval = self._sweep_tick
        if self._sweeper is None:
            if not self.closed:
                self._sweeper = gevent.spawn(self._sweep_loop)
        else:
            self._sweep_wake.set()

    def _sweep_loop(self):
        """Fail requests past their deadline; one scan of the (small) table per tick."""
        while not self.closed:
            if not self.table:
                self._sweep_interval = _INF
                self._sweep_wake.clear()
                self._sweep_wake.wait()
                continue
            gevent.sleep(self._sweep_interval)
            now = _monotonic()
            table = self.table
            expired = [rid for rid, entry in table.items()
                       if entry[3] is not None and entry[3] <= now]
            for rid in expired:
                entry = table.pop(rid, None)
                if entry is None or self.closed:      # a callback may have closed us
                    break
                self._codec.forget(rid)
                self._fail(entry, RequestTimeout(entry[0], rid, entry[4]))
