"""A Sentinel failover under load: the same Database, not restarted, follows the promoted primary.

Real processes: a primary, its replica and one Sentinel (quorum 1). Writers increment their own
counters and movers transfer gold between two players while the primary is killed with -9;
Sentinel promotes the replica; the engine's next connections ask Sentinel where the primary is,
and commits resume on the promoted one. Replication is asynchronous (no ``waitReplicas`` here),
so commits acknowledged in the last moments before the kill may be gone (README, "Limits"), but
what the promoted primary holds at the end is what each client was last told (or one more, for
a commit cut off with its outcome unknown), and every transfer is whole. A planned failover
(``SENTINEL FAILOVER``), whose old primary stays up, is followed the same way.

With ``waitReplicas: 1`` and two replicas, real game servers (the bank app's, configured with
``sentinels`` in their db settings) keep serving through the failover without a restart, and no
acknowledged payment is lost.
"""
import json
import os
import shutil
import signal
import time

import gevent
import gevent.event
import pytest
import redis

from db_models import Counter, Player, increment, move_gold
from redis_service import SentinelServer, start_primary_and_replica, start_primary_and_replicas
from zpomelo.client import Client
from zpomelo.db import Database, DbError, StoreUnavailable
from zpomelo.db.codec import unpack
from zpomelo.db.config import load_options, make_engine
from zpomelo.db.engine_redis import PRIMARY_CHECK_SECONDS, SENTINEL_TIMEOUT, RedisEngine
from zpomelo.errors import ConfigError
from zpomelo.testing import ProcessCluster, rounds, wait_until

pytestmark = pytest.mark.timeout(120)
PREFIX = "sen:"
MASTER = "zpgame"
GOLD = 1000
WRITERS = 6


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


class _Load:
    """Writers incrementing their own counters and movers passing gold between two players,
    through one Database, until stopped: what each writer was last told (``acked``) and the
    errors commits met (``refused``)."""

    def __init__(self, db):
        self.db = db
        self.keys = ["c%d" % i for i in range(WRITERS)]
        self.acked = {}
        self.refused = []
        self._stop = gevent.event.Event()
        self._workers = [gevent.spawn(self._writer, key) for key in self.keys]
        self._workers += [gevent.spawn(self._mover, i) for i in range(2)]

    def _writer(self, key):
        for _ in rounds(self._stop, seconds=110):
            try:
                self.acked[key] = self.db.run(increment, key)
            except DbError as exc:
                self.refused.append(exc)
                gevent.sleep(0.01)     # pace the retries while there is no primary

    def _mover(self, i):
        for _ in rounds(self._stop, seconds=110):
            try:
                self.db.run(move_gold, *(("pa", "pb") if i % 2 else ("pb", "pa")))
            except DbError:
                gevent.sleep(0.01)

    def wait_for_commits(self, more_than=None, count=20, message="commits"):
        """Until every writer got ``count`` more acknowledgements than in ``more_than``."""
        base = more_than or {}
        wait_until(lambda: len(self.acked) == WRITERS and all(
            self.acked[k] >= base.get(k, 0) + count for k in self.keys), 30, message=message)

    def stop(self):
        self._stop.set()
        gevent.joinall(self._workers, timeout=20)

    def check_store(self, url):
        """What the primary at ``url`` holds is what each writer was last told (or one more: the
        last attempt may have been cut off after Redis applied it), and the gold is all there."""
        assert all(isinstance(exc, StoreUnavailable) for exc in self.refused), set(map(type, self.refused))
        primary = redis.Redis.from_url(url)
        try:
            for key in self.keys:
                stored = _stored(primary, "counters", key, "n")
                assert self.acked[key] <= stored <= self.acked[key] + 1, (key, stored, self.acked[key])
            gold = [_stored(primary, "players", p, "gold") for p in ("pa", "pb")]
            assert sum(gold) == 2 * GOLD, gold
        finally:
            primary.close()


@pytest.fixture
def watched(tmp_path):
    """A primary, its replica, and a Sentinel that knows both: (primary, replica, sentinel)."""
    primary, replica = start_primary_and_replica(tmp_path)
    sentinel = SentinelServer(tmp_path / "sentinel", MASTER, primary.port).start()
    try:
        _wait_for_sentinel_to_know_the_replicas(sentinel)
        yield primary, replica, sentinel
    finally:
        sentinel.stop()
        primary.stop()
        replica.stop()


@pytest.fixture
def loaded(watched):
    """``watched``, with a Database through the Sentinel and a running ``_Load`` on it."""
    primary, replica, sentinel = watched
    db = _database(sentinel)
    load = _Load(db)
    try:
        yield primary, replica, sentinel, load
    finally:
        load.stop()
        db.close()


def _database(sentinel, **options):
    db = Database(RedisEngine(prefix=PREFIX, socket_timeout=2.0, sentinels=[("127.0.0.1", sentinel.port)],
                              sentinel_master=MASTER, **options),
                  commit_timeout=5.0, max_retries=3).register(Counter, Player)
    db.run(_make_players)
    return db


def test_the_store_follows_a_sentinel_failover_without_a_restart(loaded):
    primary, replica, sentinel, load = loaded
    load.wait_for_commits(message="commits on the first primary")
    killed_at = time.monotonic()
    primary.kill()
    wait_until(lambda: load.refused, 10, message="commits failing once the primary is gone")
    wait_until(lambda: _primary_port(sentinel) == replica.port, 60,
               message="Sentinel to promote the replica")
    load.wait_for_commits(dict(load.acked), message="commits on the promoted primary, "
                          "through the same Database")
    print("sentinel failover: %.2f s from the kill to 20 commits per writer on the promoted "
          "primary; %d commits refused meanwhile" % (time.monotonic() - killed_at, len(load.refused)))
    load.stop()
    load.check_store(replica.url)


def test_a_planned_failover_moves_the_store_off_a_primary_that_stays_up(loaded):
    """SENTINEL FAILOVER: the old primary stays up, and a primary, until Sentinel turns it into a
    replica about 10 s later; connections left open to it would go on writing there (and those
    writes are lost with its data). The engine asks Sentinel where the primary is every second
    and moves its writes: the new primary's documents advance through the same Database, and
    in the end hold what each client was last told."""
    primary, replica, sentinel, load = loaded
    load.wait_for_commits(message="commits on the first primary")
    link = redis.Redis(port=sentinel.port)
    try:
        asked_at = time.monotonic()
        link.execute_command("SENTINEL", "FAILOVER", MASTER)
    finally:
        link.close()
    wait_until(lambda: _primary_port(sentinel) == replica.port, 60,
               message="Sentinel to promote the replica")
    new_primary = redis.Redis.from_url(replica.url)
    old = redis.Redis.from_url(primary.url)
    try:
        switched = {k: _stored(new_primary, "counters", k, "n") for k in load.keys}
        wait_until(lambda: all(_stored(new_primary, "counters", k, "n") >= switched[k] + 20
                               for k in load.keys), 30,
                   message="commits reaching the new primary through the same Database")
        moved = time.monotonic() - asked_at
        role = old.info("replication")["role"]
    finally:
        new_primary.close()
        old.close()
    print("planned failover: %.2f s from SENTINEL FAILOVER to 20 commits per writer on the new "
          "primary; the old one was still a %s" % (moved, role))
    # the engine moved by itself, not because Sentinel closed its connections to the old one
    assert role == "master", "the writes moved only when the old primary became a replica"
    load.stop()
    load.check_store(replica.url)


def test_sentinels_in_db_json_are_checked_and_reach_the_engine(tmp_path):
    (tmp_path / "config").mkdir()
    options = load_options(str(tmp_path), "production", {
        "engine": "redis", "sentinels": ["127.0.0.1:26379", "127.0.0.2:26380"],
        "sentinelMaster": "game", "sentinelPassword": "watchers", "url": "redis://:secret@ignored:1/3"})
    engine = make_engine(options, str(tmp_path), "production")
    try:
        kwargs = engine.client.connection_pool.connection_kwargs
        assert (kwargs["db"], kwargs["password"]) == (3, "secret")
        assert engine._sentinel.sentinel_kwargs["password"] == "watchers"
        assert engine.client.connection_pool.service_name == "game"
        assert "127.0.0.1:26379,127.0.0.2:26380/game" in engine.url
    finally:
        engine.close()
    for wrong in (["127.0.0.1"], "127.0.0.1:26379", [], ["host:port"], ["h:70000"]):
        with pytest.raises(ConfigError, match="host:port"):
            load_options(str(tmp_path), "production", {"engine": "redis", "sentinels": wrong})
    with pytest.raises(ConfigError, match="TLS"):
        load_options(str(tmp_path), "production", {"engine": "redis", "sentinels": ["h:26379"],
                                                    "url": "rediss://h:6380/0"})


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


def test_sentinels_with_a_password(tmp_path):
    primary, replica = start_primary_and_replica(tmp_path)
    sentinel = SentinelServer(tmp_path / "sentinel", MASTER, primary.port, password="s3cret").start()
    engines = []

    def database(**options):
        engine = RedisEngine(prefix=PREFIX, sentinels=[("127.0.0.1", sentinel.port)],
                             **dict({"sentinel_master": MASTER}, **options))
        engines.append(engine)
        return Database(engine, commit_timeout=5.0, max_retries=0).register(Counter, Player)
    try:
        assert database(sentinel_password="s3cret").run(increment, "c") == 1
        with pytest.raises(StoreUnavailable, match="no Sentinel of .* named a primary \\(they "
                           "answered AuthenticationError\\): check sentinels, sentinelMaster and "
                           "sentinelPassword"):
            database().run(increment, "c")              # no password for the Sentinels
        with pytest.raises(StoreUnavailable, match="named a primary: check"):
            database(sentinel_password="s3cret", sentinel_master="other").run(increment, "c")
    finally:
        for engine in engines:
            engine.close()
        sentinel.stop()
        primary.stop()
        replica.stop()


def test_a_frozen_sentinel_holds_commits_up_a_second_at_most(tmp_path):
    """Two Sentinels, the first one frozen (SIGSTOP: it accepts connections and never answers,
    as a host gone silent): the writer asks them before a batch once a second, and the frozen one
    may hold that batch only for the Sentinel timeout (1 s), not the store's socket timeout."""
    primary, replica = start_primary_and_replica(tmp_path)
    sentinels = [SentinelServer(tmp_path / ("sentinel%d" % n), MASTER, primary.port).start()
                 for n in range(2)]
    engine = None
    try:
        for sentinel in sentinels:
            _wait_for_sentinel_to_know_the_replicas(sentinel)
        engine = RedisEngine(prefix=PREFIX, socket_timeout=10.0, sentinel_master=MASTER,
                             sentinels=[("127.0.0.1", s.port) for s in sentinels])
        db = Database(engine, commit_timeout=20.0).register(Counter, Player)
        db.run(increment, "c")
        os.kill(sentinels[0].proc.pid, signal.SIGSTOP)
        try:
            slowest = 0.0
            deadline = time.monotonic() + 3 * PRIMARY_CHECK_SECONDS
            while time.monotonic() < deadline:      # spans the checks of the next 3 seconds
                started = time.monotonic()
                db.run(increment, "c")
                slowest = max(slowest, time.monotonic() - started)
        finally:
            os.kill(sentinels[0].proc.pid, signal.SIGCONT)
        assert slowest < SENTINEL_TIMEOUT + 1.0, slowest
        assert slowest >= SENTINEL_TIMEOUT * 0.9, slowest    # it did ask the frozen one first
    finally:
        if engine is not None:
            engine.close()
        for sentinel in sentinels:
            sentinel.stop()
        primary.stop()
        replica.stop()
