"""A Sentinel failover under load: the same Database, not restarted, follows the promoted primary.

Real processes: a primary, its replica and one Sentinel (quorum 1). Writers increment their own
counters and movers transfer gold between two players while the primary is killed with -9;
Sentinel promotes the replica; the engine's next connections ask Sentinel where the primary is,
and commits resume on the promoted one. Replication is asynchronous (no ``waitReplicas`` here),
so commits acknowledged in the last moments before the kill may be gone (README, "Limits"), but
what the promoted primary holds at the end is exactly what each client was last told, and every
transfer is whole.

With ``waitReplicas: 1`` and two replicas, the same holds for real game servers: the bank example
app's servers, configured with ``sentinels`` in their db settings, keep serving through the
failover without a restart, and no acknowledged payment is lost.
"""
import json
import os
import shutil
import time

import gevent
import gevent.event
import pytest
import redis

from db_models import Counter, Player
from redis_service import SentinelServer, start_primary_and_replica, start_primary_and_replicas
from zpomelo.client import Client
from zpomelo.db import Database, DbError, StoreUnavailable
from zpomelo.db.codec import unpack
from zpomelo.db.config import load_options, make_engine
from zpomelo.db.engine_redis import RedisEngine
from zpomelo.errors import ConfigError
from zpomelo.testing import ProcessCluster, rounds, wait_until

pytestmark = pytest.mark.timeout(120)
PREFIX = "sen:"
MASTER = "zpgame"
GOLD = 1000
WRITERS = 6


def _inc(key):
    counter = Counter.get_or_create(key)
    counter.n += 1
    return counter.n


def _transfer(src, dst):
    Player.get(src).gold -= 1
    Player.get(dst).gold += 1


def _make_players():
    for name in ("pa", "pb"):
        Player.create(name, gold=GOLD)


def _stored(client, collection, key, field):
    data = client.hget("%s%s\x1f%s" % (PREFIX, collection, key), "d")
    return unpack(data)[field] if data is not None else 0


def _wait_for_sentinel_to_know_the_replicas(sentinel, count=1):
    link = redis.Redis(port=sentinel.port)
    try:
        wait_until(lambda: sum("s_down" not in r["flags"] and r["master-link-status"] == "ok"
                               for r in link.sentinel_slaves(MASTER)) == count,
                   30, message="Sentinel to see the replicas in sync")
    finally:
        link.close()


def _primary_port(sentinel):
    link = redis.Redis(port=sentinel.port)
    try:
        return link.sentinel_get_master_addr_by_name(MASTER)[1]
    finally:
        link.close()


def test_the_store_follows_a_sentinel_failover_without_a_restart(tmp_path):
    primary, replica = start_primary_and_replica(tmp_path)
    sentinel = SentinelServer(tmp_path / "sentinel", MASTER, primary.port).start()
    db = None
    try:
        _wait_for_sentinel_to_know_the_replicas(sentinel)
        db = Database(RedisEngine(prefix=PREFIX, socket_timeout=2.0,
                                  sentinels=[("127.0.0.1", sentinel.port)], sentinel_master=MASTER),
                      commit_timeout=5.0, max_retries=3).register(Counter, Player)
        db.run(_make_players)
        acked = {}
        refused = []
        stop = gevent.event.Event()

        def writer(key):
            for _ in rounds(stop, seconds=110):
                try:
                    acked[key] = db.run(_inc, key)
                except DbError as exc:
                    refused.append(exc)
                    gevent.sleep(0.01)     # pace the retries while there is no primary

        def mover(i):
            for _ in rounds(stop, seconds=110):
                try:
                    db.run(_transfer, *(("pa", "pb") if i % 2 else ("pb", "pa")))
                except DbError:
                    gevent.sleep(0.01)
        keys = ["c%d" % i for i in range(WRITERS)]
        workers = [gevent.spawn(writer, key) for key in keys] + [gevent.spawn(mover, i) for i in range(2)]
        try:
            wait_until(lambda: len(acked) == WRITERS and min(acked.values()) >= 20, 30,
                       message="commits on the first primary")
            killed_at = time.monotonic()
            primary.kill()
            wait_until(lambda: refused, 10, message="commits failing once the primary is gone")
            wait_until(lambda: _primary_port(sentinel) == replica.port, 60,
                       message="Sentinel to promote the replica")
            after_failover = dict(acked)
            wait_until(lambda: all(acked[k] >= after_failover[k] + 20 for k in keys), 30,
                       message="commits on the promoted primary, through the same Database")
            print("sentinel failover: %.2f s from the kill to 20 commits per writer on the promoted "
                  "primary; %d commits refused meanwhile" % (time.monotonic() - killed_at, len(refused)))
        finally:
            stop.set()
            gevent.joinall(workers, timeout=20)
        assert all(isinstance(exc, StoreUnavailable) for exc in refused), set(map(type, refused))

        promoted = redis.Redis.from_url(replica.url)
        try:
            for key in keys:
                # the last attempt may have been cut off after Redis applied it (outcome unknown)
                assert acked[key] <= _stored(promoted, "counters", key, "n") <= acked[key] + 1, key
            gold = [_stored(promoted, "players", p, "gold") for p in ("pa", "pb")]
            assert sum(gold) == 2 * GOLD, gold
        finally:
            promoted.close()
    finally:
        if db is not None:
            db.close()
        sentinel.stop()
        primary.stop()
        replica.stop()


def test_sentinels_in_db_json_are_checked_and_reach_the_engine(tmp_path):
    (tmp_path / "config").mkdir()
    options = load_options(str(tmp_path), "production", {
        "engine": "redis", "sentinels": ["127.0.0.1:26379", "10.0.0.8:26380"],
        "sentinelMaster": "game", "url": "redis://:secret@ignored:1/3"})
    engine = make_engine(options, str(tmp_path), "production")
    try:
        kwargs = engine.client.connection_pool.connection_kwargs
        assert (kwargs["db"], kwargs["password"]) == (3, "secret")
        assert engine.client.connection_pool.service_name == "game"
        assert "127.0.0.1:26379,10.0.0.8:26380/game" in engine.url
    finally:
        engine.close()
    for wrong in (["127.0.0.1"], "127.0.0.1:26379", [], ["host:port"], ["h:70000"]):
        with pytest.raises(ConfigError, match="host:port"):
            load_options(str(tmp_path), "production", {"engine": "redis", "sentinels": wrong})


BANK_APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "bank")


@pytest.mark.timeout(120)
def test_game_servers_follow_a_sentinel_failover_and_lose_nothing_acknowledged(tmp_path, monkeypatch):
    primary, replicas = start_primary_and_replicas(tmp_path, 2)
    sentinel = SentinelServer(tmp_path / "sentinel", MASTER, primary.port).start()
    project = tmp_path / "bank"
    shutil.copytree(BANK_APP, project)
    cluster = None
    clients = []
    try:
        _wait_for_sentinel_to_know_the_replicas(sentinel, 2)
        monkeypatch.setenv("ZPOMELO_TEST_DB", json.dumps({
            "engine": "redis", "prefix": PREFIX, "sentinels": ["127.0.0.1:%d" % sentinel.port],
            "sentinelMaster": MASTER, "waitReplicas": 1, "waitTimeout": 2, "commitTimeout": 10}))
        cluster = ProcessCluster(str(project), "test", password="test-secret").start()
        servers = cluster.servers()
        bank_pids = {sid: servers[sid]["pid"] for sid in ("bank-1", "bank-2")}
        port = servers["connector-1"]["clientPort"]
        uids = ["u%d" % i for i in range(4)]
        for uid in uids:
            client = Client.connect("127.0.0.1", port, request_timeout=20)
            assert client.request("connector.entryHandler.entry", {"uid": uid})["code"] == 200
            assert client.request("bank.bankHandler.open", {"gold": 100})["code"] == 200
            clients.append(client)
        paid = {uid: 0 for uid in uids}      # answered with success
        unknown = {uid: 0 for uid in uids}   # answered with an error: applied or not
        stop = gevent.event.Event()

        def payer(client, uid):
            for _ in rounds(stop, seconds=110):
                if client.request("bank.bankHandler.pay", {"amount": 1}).get("code") == 200:
                    paid[uid] += 1
                else:
                    unknown[uid] += 1
                    gevent.sleep(0.02)      # pace the retries while there is no primary
        payers = [gevent.spawn(payer, c, u) for c, u in zip(clients, uids)]
        try:
            wait_until(lambda: min(paid.values()) >= 20, 30, message="payments before the kill")
            primary.kill()
            wait_until(lambda: _primary_port(sentinel) in [r.port for r in replicas], 60,
                       message="Sentinel to promote a replica")
            before = dict(paid)
            wait_until(lambda: all(paid[u] >= before[u] + 20 for u in uids), 60,
                       message="payments through the same servers after the failover")
        finally:
            stop.set()
            gevent.joinall(payers, timeout=30)
        servers = cluster.servers()
        assert {sid: servers[sid]["pid"] for sid in bank_pids} == bank_pids   # nobody restarted
        assert sum(unknown.values()) > 0    # the failover was felt: commits failed meanwhile
        for client, uid in zip(clients, uids):
            gold = client.request("bank.bankHandler.balance", {})["gold"]
            # no acknowledged payment lost; none applied twice or out of thin air
            assert 100 + paid[uid] <= gold <= 100 + paid[uid] + unknown[uid], (uid, gold, paid, unknown)
    finally:
        for client in clients:
            client.close()
        if cluster is not None:
            cluster.stop()
        sentinel.stop()
        primary.stop()
        for replica in replicas:
            replica.stop()
