"""Waiting for a condition in tests: poll it with a deadline instead of sleeping a guessed time."""
import time

import gevent

FIRST_INTERVAL = 0.005  # seconds: a condition that is nearly true is seen at once
MAX_INTERVAL = 0.05     # a slow condition (a process restarting) is not polled in a busy loop


def wait_until(predicate, timeout=10.0, interval=None, message="condition"):
    """Poll ``predicate`` until it returns something true (returned) or ``timeout`` passes.

    Raises AssertionError naming ``message`` at the deadline. Polls every 5 ms at first, backing
    off to 50 ms (or every ``interval`` seconds if given). Sleeps with ``gevent.sleep`` so the
    servers' greenlets run meanwhile; where nothing runs on gevent's loop that is a plain sleep,
    so the same helper waits for subprocesses and files too.
    """
    deadline = time.monotonic() + timeout
    pause = interval if interval is not None else FIRST_INTERVAL
    while True:
        value = predicate()
        if value:
            return value
        now = time.monotonic()
        if now >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, message))
        gevent.sleep(min(pause, deadline - now))
        if interval is None:
            pause = min(pause * 2, MAX_INTERVAL)


def rounds(stop=None, seconds=60.0, limit=None):
    """The rounds of a load loop: yields 1, 2, ... until ``stop`` says stop, ``seconds`` have
    passed or ``limit`` rounds ran, whichever comes first.

    ``stop`` is a gevent/threading Event (stop once set) or a callable (stop once it returns
    something true). Every loop in a test needs such a bound: a test that fails (or a server
    that hangs) before the test stops its load must not leave the loop running past the test's
    own timeout. ``for n in rounds(stop, seconds=30): client.request(...)``
    """
    done = stop.is_set if hasattr(stop, "is_set") else stop if stop is not None else (lambda: False)
    deadline = time.monotonic() + seconds
    n = 0
    while not done() and time.monotonic() < deadline and (limit is None or n < limit):
        n += 1
        yield n
