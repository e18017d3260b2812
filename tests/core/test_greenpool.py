import gevent
import pytest
from gevent.event import Event

from zpomelo.greenpool import GreenPool

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
