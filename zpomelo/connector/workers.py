"""Workers: reused greenlets that serve client connections only while they have work.

An idle connection holds no greenlet of its own: its socket's read watcher (and its deadline
timer) call back in the hub, and the callback hands the connection to a worker greenlet, which
reads, decodes and runs the frontend's code (which may block: a handshake hook, a global filter,
a session's close callbacks) and goes back to the pool when the socket has nothing more to read.
A parked gevent greenlet costs about 7 KB of RSS on CPython 3.11 (the greenlet, its saved C
stack and the touched pages of its own frame stack), which was most of an idle connection; a new
greenlet per connection also cost the connect path a map/unmap of that frame stack.

``run`` switches straight into the worker, so it must be called from the hub (a watcher or
timer callback), never from another greenlet (that greenlet would never be switched back to).
"""
import logging

from gevent import GreenletExit, getcurrent
from gevent.event import Event
from gevent.hub import get_hub
from greenlet import greenlet

from zpomelo import greenpool

logger = logging.getLogger(__name__)

KEEP_IDLE = 64
_TASK = object()    # marks a switch that hands a parked worker its next job


class Workers:
    """``run(fn, owner, arg)`` calls ``fn(owner, arg)`` in a worker greenlet (from the hub only).

    ``busy`` maps each worker running a job to its owner (a connection or a sniffing socket);
    jobs must catch their own exceptions (an escaping one is logged).
    """

    def __init__(self, keep_idle=KEEP_IDLE):
        self.busy = {}
        self._parked = []
        self._keep_idle = keep_idle
        self._hub = get_hub()
        self._quiet = None      # an Event for join(): set when the last busy worker finishes

    def run(self, fn, owner, arg=None):
        parked = self._parked
        worker = parked.pop() if parked else greenlet(self._work, self._hub)
        worker.switch(_TASK, fn, owner, arg)

    def _work(self, _mark, fn, owner, arg):
        current = getcurrent()
        busy = self.busy
        hub = self._hub
        parked = self._parked
        after_job = greenpool._after_job
        while True:
            busy[current] = owner
            try:
                fn(owner, arg)
            except BaseException:   # noqa: B036 - a job's bug must not take the hub down
                logger.exception("connection job %r failed for %r", fn, owner)
            finally:
                del busy[current]
                for hook in after_job:
                    try:
                        hook(current)
                    except Exception:
                        logger.exception("an after-job hook failed (%r)", hook)
                if not busy and self._quiet is not None:
                    self._quiet.set()
            fn = owner = arg = None
            if len(parked) >= self._keep_idle:
                return
            current.gr_context = None     # the next job starts with a fresh contextvars context
            parked.append(current)
            while True:
                try:
                    task = hub.switch()
                except GreenletExit:
                    if current in parked:
                        parked.remove(current)
                    return
                except BaseException:   # noqa: B036 - a stale timeout of an earlier job: nobody to tell
                    continue
                if type(task) is tuple and len(task) == 4 and task[0] is _TASK:
                    _, fn, owner, arg = task
                    break

    def join(self, timeout=None):
        """Wait until no worker runs a job; True if none does within ``timeout``."""
        if not self.busy:
            return True
        self._quiet = Event()
        try:
            return self._quiet.wait(timeout)
        finally:
            self._quiet = None

    def kill(self):
        """Throw GreenletExit into every busy worker (each ends its job) and end the parked ones."""
        for worker in list(self.busy):
            if not worker.dead:
                get_hub().loop.run_callback(_throw_if_alive, worker)
        parked, self._parked = self._parked, []
        for worker in parked:
            get_hub().loop.run_callback(_throw_if_alive, worker)


def _throw_if_alive(worker):
    if not worker.dead:
        worker.throw(GreenletExit)
