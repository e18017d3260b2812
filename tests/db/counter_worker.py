"""One worker process: G greenlets x N increments of one counter through its own Database.

python counter_worker.py KIND URL PREFIX GREENLETS INCREMENTS -> prints {"done": n, ...} as JSON
"""
from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from db_models import Counter  # noqa: E402
from zpomelo.db import Database  # noqa: E402


def main(kind, url, prefix, greenlets, increments):
    if kind.startswith("sqlite"):
        from zpomelo.db.engine_sqlite import SqliteEngine
        engine = SqliteEngine(url, synchronous="NORMAL" if kind == "sqlite-normal" else "FULL")
    else:
        from zpomelo.db.engine_redis import RedisEngine
        engine = RedisEngine(url, prefix=prefix)
    db = Database(engine, lock_timeout=30.0, max_retries=1000)
    done = [0]

    def inc():
        Counter.get_or_create("hot").n += 1

    def worker():
        for _ in range(increments):
            db.run(inc)
            done[0] += 1
    jobs = [gevent.spawn(worker) for _ in range(greenlets)]
    gevent.joinall(jobs, raise_error=True)
    print(json.dumps({"done": done[0], "stats": db.stats}))
    db.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
