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
TASK = object()     # marks a switch that hands a parked worker its next job


class Workers:
    """``run(fn, owner, arg)`` calls ``fn(owner, arg)`` in a worker greenlet (from the hub only).

    ``busy`` maps each worker running a job to its owner (a connection or a sniffing socket);
    jobs must catch their own exceptions (an escaping one is logged).
    """

    def __init__(self, keep_idle=KEEP_IDLE):
        self.busy = {}
        self.parked = []        # workers waiting (in the hub) for a job
        self._keep_idle = keep_idle
        self._hub = get_hub()
        self._quiet = None      # an Event for join(): set when the last busy worker finishes

    def run(self, fn, owner, arg=None):
        parked = self.parked
        (parked.pop() if parked else self.new()).switch(TASK, fn, owner, arg)

    def new(self):
        """A new worker; its first ``switch(TASK, fn, owner, arg)`` runs that job."""
        return greenlet(self._work, self._hub)

    def _work(self, _mark, fn, owner, arg):
        current = getcurrent()
        busy = self.busy
        park = self.parked.append
        wait = self._hub.switch
        after_job = greenpool._after_job
        while True:
            busy[current] = owner
            try:
                fn(owner, arg)
            except BaseException:   # noqa: B036 - a job's bug must not take the hub down
                logger.exception("connection job %r failed for %r", fn, owner)
            del busy[current]
            if after_job:
                self._after_job(after_job, current)
            if not busy and self._quiet is not None:
                self._quiet.set()
            fn = owner = arg = None
            if len(self.parked) >= self._keep_idle:
                return
            current.gr_context = None     # the next job starts with a fresh contextvars context
            park(current)
            while True:
                try:
                    task = wait()
                except GreenletExit:
                    if current in self.parked:
                        self.parked.remove(current)
                    return
                except BaseException:   # noqa: B036 - a stale timeout of an earlier job: nobody to tell
                    continue
                if type(task) is tuple and len(task) == 4 and task[0] is TASK:
                    _, fn, owner, arg = task
                    break

    @staticmethod
    def _after_job(hooks, current):
        for hook in hooks:
            try:
                hook(current)
            except Exception:
                logger.exception("an after-job hook failed (%r)", hook)

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
        parked = list(self.parked)
        self.parked.clear()
        for worker in parked:
            get_hub().loop.run_callback(_throw_if_alive, worker)


def _throw_if_alive(worker):
    if not worker.dead:
        worker.throw(GreenletExit)
