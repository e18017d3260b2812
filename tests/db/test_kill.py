"""kill -9 under load: of a backend mid-transaction (both engines) and of redis-server (AOF always)."""
import json
import os
import shutil
import signal
import time

import gevent
import pytest

from engine_kinds import ALL_ENGINES, sqlite_options
from redis_service import RedisServer
from db_models import Counter
from zpomelo.client import Client
from zpomelo.db import Database, DbError
from zpomelo.db.engine_redis import RedisEngine
from zpomelo.router import crc32_key
from zpomelo.testing import ProcessCluster, rounds, wait_until

APP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "bank")


@pytest.mark.timeout(120)
def test_redis_kill9_with_aof_always_loses_nothing_acknowledged(tmp_path):
    server = RedisServer(tmp_path / "redis", appendfsync="always")
    os.makedirs(server.directory)
    server.start()
    db = Database(RedisEngine(server.url, prefix="k:", socket_timeout=2.0), commit_timeout=5.0,
                  max_retries=3)
    acked = {}      # key -> highest value whose commit was acknowledged
    failed = [0]
    stop = gevent.event.Event()

    def inc(key):
        c = Counter.get_or_create(key)
        c.n += 1
        return c.n

    def writer(key):
        for _ in rounds(stop, seconds=120):      # the test's timeout
            try:
                acked[key] = db.run(inc, key)
            except DbError:
                failed[0] += 1
                gevent.sleep(0.01)
    try:
        workers = [gevent.spawn(writer, "k%d" % i) for i in range(8)]
        wait_until(lambda: sum(acked.values()) > 300, 30, message="commits before the kill")
        server.kill()
        wait_until(lambda: failed[0] > 0, 10, message="commits failing while Redis is down")
        stop.set()
        gevent.joinall(workers, timeout=20)
        snapshot = dict(acked)
        server.start()  # same port, same directory: it replays the AOF
        fresh = Database(RedisEngine(server.url, prefix="k:"))
        stored = {key: fresh.run(lambda k=key: Counter.get(k).n) for key in snapshot}
        for key, value in snapshot.items():
            assert stored[key] >= value, (key, stored[key], value)  # nothing acknowledged lost
            assert stored[key] <= value + 1  # at most the one commit whose answer was cut off
        fresh.close()
    finally:
        db.close()
        server.stop()


def _project(tmp_path, store, kind):
    project = tmp_path / "bank"
    shutil.copytree(APP_DIR, project)
    servers = json.loads((project / "config" / "servers.json").read_text())
    for record in servers["test"]["bank"]:
        record["auto-restart"] = True
    (project / "config" / "servers.json").write_text(json.dumps(servers))
    if kind.startswith("sqlite"):
        options = dict(sqlite_options(kind), path=str(tmp_path / "bank.db"))
    else:
        options = {"engine": "redis", "url": store.url, "prefix": store.prefix}
    return project, options


@pytest.mark.timeout(180)
@pytest.mark.parametrize("engine_kind", ALL_ENGINES)
def test_backend_kill9_mid_transaction_under_load(tmp_path, store, monkeypatch):
    project, options = _project(tmp_path, store, store.kind)
    monkeypatch.setenv("ZPOMELO_TEST_DB", json.dumps(options))
    monkeypatch.setenv("ZPOMELO_TEST_HANDLER_TIMEOUT", "5")
    cluster = ProcessCluster(project, "test", password="test-secret").start()
    clients = []
    try:
        servers = cluster.servers()
        port = servers["connector-1"]["clientPort"]
        uids = ["u%d" % i for i in range(6)]
        for uid in uids:
            client = Client.connect("127.0.0.1", port, request_timeout=15)
            assert client.request("connector.entryHandler.entry", {"uid": uid})["code"] == 200
            assert client.request("bank.bankHandler.open", {"gold": 100})["code"] == 200
            clients.append(client)
        paid = {uid: 0 for uid in uids}      # +1 answered with success
        unknown = {uid: 0 for uid in uids}   # answered with an error: may or may not have applied
        transfers = {"ok": 0, "err": 0}
        stop = gevent.event.Event()

        def payer(client, uid):
            for _ in rounds(stop, seconds=180):  # the test's timeout
                answer = client.request("bank.bankHandler.pay", {"amount": 1})
                if answer.get("code") == 200:
                    paid[uid] += 1
                else:
                    unknown[uid] += 1
                    gevent.sleep(0.02)

        def mover(client, a, b):
            for _ in rounds(stop, seconds=180):
                answer = client.request("bank.bankHandler.transfer", {"from": a, "to": b, "amount": 1})
                transfers["ok" if answer.get("code") == 200 else "err"] += 1
                a, b = b, a
                if answer.get("code") != 200:
                    gevent.sleep(0.02)

        # three payers on their own accounts; three movers passing gold around the other three
        movers = []
        for i, client in enumerate(clients[3:]):
            movers.append(gevent.spawn(mover, client, uids[3 + i], uids[3 + (i + 1) % 3]))
        payers = [gevent.spawn(payer, c, u) for c, u in zip(clients[:3], uids[:3])]
        wait_until(lambda: sum(paid.values()) > 100 and transfers["ok"] > 50, 30, message="load")
        # a request sleeping inside its transaction (after its write) when the kill lands
        sleeper_uid = next("s%d" % n for n in range(100)
                           if crc32_key("s%d" % n) % 2 == 0)  # routed to bank-1 (id order)
        sleeper = Client.connect("127.0.0.1", port, request_timeout=15)
        clients.append(sleeper)
        sleeper.request("connector.entryHandler.entry", {"uid": sleeper_uid})
        assert sleeper.request("bank.bankHandler.open", {"gold": 100})["server"] == "bank-1"
        inside = str(tmp_path / "inside")
        seen = []   # pushes of the killed transaction: nobody may ever see one
        for client in clients:
            client.on("onMoney", seen.append)
        slow = gevent.spawn(sleeper.request, "bank.bankHandler.slow",
                            {"seconds": 4, "inside_file": inside, "notify": uids + [sleeper_uid]})
        wait_until(lambda: os.path.exists(inside), 10, message="the slow handler inside its transaction")
        victim = servers["bank-1"]["pid"]
        os.kill(victim, signal.SIGKILL)
        assert slow.get(timeout=10)["code"] != 200
        wait_until(lambda: cluster.servers()["bank-1"]["pid"] not in (None, victim),
                   60, interval=0.2, message="bank-1 restarted by the master")
        before = sum(paid.values())
        wait_until(lambda: sum(paid.values()) > before + 100, 30, message="requests succeed again")
        stop.set()
        gevent.joinall(payers + movers, timeout=30)
        check = clients[0]
        for uid in uids[:3]:
            gold = check.request("bank.bankHandler.balance", {"uid": uid})["gold"]
            # no success answer for a lost commit; nothing applied twice or out of thin air
            assert 100 + paid[uid] <= gold <= 100 + paid[uid] + unknown[uid], (uid, gold, paid, unknown)
        total = sum(check.request("bank.bankHandler.balance", {"uid": u})["gold"] for u in uids[3:])
        assert total == 300, total  # transfers: all or nothing, across the kill
        assert check.request("bank.bankHandler.balance", {"uid": sleeper_uid})["gold"] == 100
        assert seen == []
        print("paid %s unknown %s transfers %s" % (paid, unknown, transfers))
    finally:
        for client in clients:
            client.close()
        cluster.stop()
