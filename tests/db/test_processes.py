"""Real processes sharing one store (both engines)."""
import json
import os
import subprocess
import sys
import time

import pytest

from engine_kinds import ALL_ENGINES
from db_models import Counter

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.timeout(240)
@pytest.mark.parametrize("engine_kind", ALL_ENGINES)
def test_two_processes_20_greenlets_500_increments_each(store):
    db = store()
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "counter_worker.py"), store.kind,
                               store.url, store.prefix, "20", "500"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    started = time.monotonic()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=220)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    elapsed = time.monotonic() - started
    assert [r["done"] for r in results] == [10000, 10000]
    assert db.run(lambda: Counter.get("hot").n) == 20000
    print("%s: 20,000 increments in %.1fs, conflicts %s" % (
        store.kind, elapsed, [r["stats"]["conflicts"] for r in results]))
