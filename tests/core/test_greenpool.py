import gevent
import pytest
from gevent.event import Event

from zpomelo.greenpool import GreenPool
from zpomelo.testing import wait_until

pytestmark = pytest.mark.timeout(10)


def test_runs_jobs_and_bounds_concurrency():
    pool = GreenPool(2)
    release = Event()
    started = []

    def job(n):
        started.append(n)
        release.wait()

    pool.spawn(job, 1)
    pool.spawn(job, 2)
    assert pool.full() and len(pool) == 2
    third = gevent.spawn(pool.spawn, job, 3)  # waits for a free slot
    gevent.sleep(0)
    assert started == [1, 2] and not third.ready()
    release.set()
    third.join(5)
    assert third.successful() and pool.join(5)
    assert sorted(started) == [1, 2, 3] and len(pool) == 0 and pool.waits >= 1


def test_a_failing_job_frees_its_slot_and_kill_abandons_the_rest():
    pool = GreenPool(1)
    pool.spawn(lambda: 1 / 0)
    assert pool.join(5) and len(pool) == 0
    pool.spawn(gevent.sleep, 30)
    assert not pool.join(0.01)
    pool.kill()
    assert pool.join(0) and len(pool) == 0
    with pytest.raises(ValueError):
        GreenPool(0)


def test_a_finished_greenlet_runs_the_next_job_with_a_fresh_context():
    import contextvars
    var = contextvars.ContextVar("var")
    pool = GreenPool(4)
    seen = []

    def job(n):
        seen.append((n, gevent.getcurrent(), var.get(None)))
        var.set(n)

    pool.spawn(job, 1)
    assert pool.join(5)
    pool.spawn(job, 2)
    assert pool.join(5)
    (_, first, before1), (_, second, before2) = seen
    assert first is second                  # reused, not a new greenlet
    assert before1 is None and before2 is None   # job 1's contextvars did not leak into job 2


def test_a_greenlet_whose_job_raised_is_not_reused_and_stray_switches_are_ignored():
    pool = GreenPool(2)
    greenlets = []

    def fail():
        greenlets.append(gevent.getcurrent())
        raise ValueError("boom")

    def ok():
        greenlets.append(gevent.getcurrent())

    pool.spawn(fail)
    assert pool.join(5)
    pool.spawn(ok)
    assert pool.join(5)
    assert greenlets[0] is not greenlets[1]
    parked = greenlets[1]
    gevent.get_hub().loop.run_callback(parked.switch, None)   # a stray wake-up, not a job
    gevent.sleep(0)
    pool.spawn(ok)
    assert pool.join(5) and greenlets[2] is parked


def test_at_most_keep_idle_greenlets_stay_parked_and_kill_ends_them():
    pool = GreenPool(10, keep_idle=2)
    release = Event()
    for _ in range(5):
        pool.spawn(release.wait)
    # all five start, each blocked in a greenlet of its own (a burst that ran out of its 5 ms on
    # a loaded machine starts the rest after the next poll, so wait rather than sleep(0))
    wait_until(lambda: len(pool.running) == 5, 5, message="five jobs started")
    release.set()
    assert pool.join(5)
    assert len(pool._parked) == 2
    parked = list(pool._parked)
    pool.kill()
    gevent.sleep(0)
    assert all(g.dead for g in parked) and pool._parked == []


def test_a_burst_of_jobs_that_do_not_block_runs_in_one_greenlet_in_spawn_order():
    """A frame of RPC calls is one burst: a greenlet per call (or a switch per call) was the
    backend's largest per-request cost at hundreds of calls in flight."""
    pool = GreenPool(1000)
    ran = []
    for n in range(300):
        pool.spawn(lambda n=n: ran.append((n, gevent.getcurrent())))
    assert len(pool) == 300 and ran == []       # nothing runs before the spawner yields
    assert pool.join(5)
    assert [n for n, _ in ran] == list(range(300))
    assert len({greenlet for _, greenlet in ran}) == 1


def test_a_blocked_job_does_not_hold_up_the_jobs_queued_after_it():
    pool = GreenPool(10)
    release = Event()
    order = []

    def blocking(n):
        order.append(("start", n))
        release.wait()
        order.append(("end", n))

    pool.spawn(blocking, 1)
    pool.spawn(order.append, ("quick", 2))
    pool.spawn(blocking, 3)
    pool.spawn(order.append, ("quick", 4))
    gevent.sleep(0)
    # started in spawn order; each job after a blocked one started without waiting for it
    assert order == [("start", 1), ("quick", 2), ("start", 3), ("quick", 4)]
    assert len(pool) == 2 and len(pool.running) == 2
    release.set()
    assert pool.join(5) and len(pool) == 0
    assert sorted(order[4:]) == [("end", 1), ("end", 3)]


def test_a_job_that_raises_in_a_burst_does_not_stop_the_jobs_after_it():
    pool = GreenPool(10)
    ran = []
    pool.spawn(ran.append, 1)
    pool.spawn(lambda: 1 / 0)
    pool.spawn(ran.append, 3)
    assert pool.join(5)
    assert ran == [1, 3] and len(pool) == 0 and not pool.running


def test_a_long_burst_lets_the_loop_poll_sockets_between_jobs():
    """Jobs of a burst run back to back, but not past BURST_SECONDS: a socket that became
    readable is served before the burst's later jobs (as gevent's own callback loop does)."""
    from time import perf_counter

    from gevent import socket

    from zpomelo.greenpool import BURST_SECONDS

    pool = GreenPool(1000)
    order = []
    near, far = socket.socketpair()

    def busy(n):
        end = perf_counter() + BURST_SECONDS / 5
        while perf_counter() < end:
            pass
        order.append(n)

    def reader():
        far.recv(1)
        order.append("read")

    gevent.spawn(reader)
    gevent.sleep(0)                         # the reader waits on its socket
    near.send(b"x")
    for n in range(100):                    # ~20 bursts' worth of work
        pool.spawn(busy, n)
    assert pool.join(10)
    near.close()
    far.close()
    assert sorted(n for n in order if n != "read") == list(range(100))
    assert [n for n in order if n != "read"] == list(range(100))   # still in spawn order
    assert order.index("read") < 50, order
