"""app.db inside a cluster (both engines): handlers in transactions, pushes on commit only."""
import json
import os
import random

import gevent
import pytest

from engine_kinds import ALL_ENGINES, sqlite_options
from zpomelo.testing import InProcessCluster, wait_until

APP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "bank")


@pytest.fixture
def bank(store, monkeypatch, tmp_path):
    if store.kind.startswith("sqlite"):
        options = dict(sqlite_options(store.kind), path=str(tmp_path / "bank.db"), lockTimeout=2)
    else:
        options = {"engine": "redis", "url": store.url, "prefix": store.prefix, "lockTimeout": 2}
    options["requestIdField"] = "requestId"
    monkeypatch.setenv("ZPOMELO_TEST_DB", json.dumps(options))
    monkeypatch.setenv("ZPOMELO_TEST_HANDLER_TIMEOUT", "1.0")
    with InProcessCluster(APP_DIR, "test") as cluster:
        yield cluster


def login(cluster, uid, gold=0, branch=None):
    client = cluster.connect("connector-1")
    assert client.request("connector.entryHandler.entry", {"uid": uid})["code"] == 200
    answer = client.request("bank.bankHandler.open", {"gold": gold, "branch": branch})
    assert answer["code"] == 200 and answer["in_tx"] is True
    return client


def gold_of(client, uid):
    answer = client.request("bank.bankHandler.balance", {"uid": uid})
    assert answer["code"] == 200, answer
    return answer["gold"]


def test_every_server_has_the_store_and_backend_requests_run_in_transactions(bank):
    assert all(bank[s].db is not None for s in ("connector-1", "bank-1", "bank-2"))
    assert not bank["connector-1"].db.filter.applies("connector.entryHandler.entry")
    assert bank["bank-1"].db.filter.applies("bank.bankHandler.open")
    assert sorted(bank["bank-1"].db.models) == ["Account", "Counter"]


def test_a_handler_that_raises_after_writing_and_pushing_changes_and_sends_nothing(bank):
    alice, bob = login(bank, "alice", 10), login(bank, "bob", 10)
    pushes = []
    bob.on("onMoney", pushes.append)
    alice.on("onMoney", pushes.append)
    answer = alice.request("bank.bankHandler.fail_after_write", {"notify": ["alice", "bob"]})
    assert answer["code"] == 500 and "failed after writing and pushing" in answer["error"]
    assert gold_of(alice, "alice") == 10
    # pushes from one server to one frontend keep their order: the marker proves nothing came before
    assert alice.request("bank.bankHandler.marker", {"notify": ["alice", "bob"], "n": 1})["code"] == 200
    wait_until(lambda: len(pushes) >= 2, 5, message="both marker pushes")
    assert pushes == [{"marker": 1}, {"marker": 1}]
    notes = bank["bank-1"].rpc.bank.bankRemote.notes.to_server("*")
    assert all(n == [] for n in notes.values())  # the RPC notify was dropped too


def test_pushes_of_a_committed_transfer_arrive(bank):
    alice, bob = login(bank, "alice", 10), login(bank, "bob", 0)
    answer = alice.request("bank.bankHandler.transfer", {"from": "alice", "to": "bob", "amount": 4})
    assert answer == {"code": 200}
    assert bob.wait_push("onTransfer", timeout=5) == {"from": "alice", "to": "bob", "amount": 4}
    assert alice.wait_push("onTransfer", timeout=5)["amount"] == 4
    assert (gold_of(alice, "alice"), gold_of(alice, "bob")) == (6, 4)
    refused = alice.request("bank.bankHandler.transfer", {"from": "alice", "to": "bob", "amount": 99})
    assert refused == {"code": 409, "error": "not enough gold"}


def test_a_handler_timeout_rolls_back(bank):
    alice = login(bank, "alice", 10)
    pushes = []
    alice.on("onMoney", pushes.append)
    answer = alice.request("bank.bankHandler.slow", {"seconds": 3, "notify": ["alice"]})
    assert answer["code"] == 500 and "timed out" in answer["error"]
    assert gold_of(alice, "alice") == 10
    assert alice.request("bank.bankHandler.marker", {"notify": ["alice"], "n": 2})["code"] == 200
    wait_until(lambda: pushes, 5, message="the marker push")
    assert pushes == [{"marker": 2}]  # the timed-out transaction's push never left


@pytest.mark.parametrize("engine_kind", ALL_ENGINES)
def test_many_clients_random_transfers_conserve_the_sum(bank):
    uids = ["p%d" % i for i in range(6)]
    clients = {uid: login(bank, uid, 100) for uid in uids}
    errors = []
    ok = [0]

    def client_loop(uid, rounds):
        rnd = random.Random(uid)
        for _ in range(rounds):
            other = rnd.choice([u for u in uids if u != uid])
            src, dst = (uid, other) if rnd.random() < 0.5 else (other, uid)
            answer = clients[uid].request("bank.bankHandler.transfer", {
                "from": src, "to": dst, "amount": rnd.randint(1, 30),
                "pause": rnd.choice([0, 0, 0.002])}, timeout=10)
            if answer["code"] == 200:
                ok[0] += 1
            else:
                errors.append(answer)
    jobs = [gevent.spawn(client_loop, uid, 25) for uid in uids]
    gevent.joinall(jobs, timeout=90, raise_error=True)
    total = sum(gold_of(clients["p0"], uid) for uid in uids)
    assert total == 600
    assert ok[0] > 0
    for error in errors:  # every failure is a clear, expected error
        assert error in ({"code": 409, "error": "not enough gold"},) or \
            error["error"].startswith(("LockTimeout", "TooManyRetries")), error
    stats = [bank[s].db.locks.stats for s in ("bank-1", "bank-2")]
    print("transfers ok %d, errors %d, lock stats %s" % (ok[0], len(errors), stats))


def test_opposite_transfers_on_one_server_deadlock_and_both_complete(bank):
    # both requests from the same uid: both run on the same bank server
    alice, bob = login(bank, "alice", 50), login(bank, "bob", 50)
    results = []
    jobs = [gevent.spawn(lambda: results.append(alice.request("bank.bankHandler.transfer", {
                "from": "alice", "to": "bob", "amount": 1, "pause": 0.05}))),
            gevent.spawn(lambda: results.append(alice.request("bank.bankHandler.transfer", {
                "from": "bob", "to": "alice", "amount": 2, "pause": 0.05})))]
    gevent.joinall(jobs, timeout=10, raise_error=True)
    assert results == [{"code": 200}, {"code": 200}]
    assert (gold_of(alice, "alice"), gold_of(alice, "bob")) == (51, 49)
    assert sum(bank[s].db.locks.stats["deadlocks"] for s in ("bank-1", "bank-2")) == 1


def test_a_retried_request_with_a_request_id_applies_once(bank):
    alice = login(bank, "alice", 0)
    first = alice.request("bank.bankHandler.pay", {"amount": 5, "requestId": "r1"})
    again = alice.request("bank.bankHandler.pay", {"amount": 5, "requestId": "r1"})
    other = alice.request("bank.bankHandler.pay", {"amount": 5, "requestId": "r2"})
    assert first == again == {"code": 200, "gold": 5}
    assert other == {"code": 200, "gold": 10}


def test_index_lookup_in_a_handler(bank):
    alice = login(bank, "alice", 0, branch="north")
    login(bank, "bob", 0, branch="north")
    login(bank, "carol", 0, branch="south")
    assert alice.request("bank.bankHandler.branch", {"branch": "north"})["ids"] == ["alice", "bob"]


def test_routes_convention_picks_the_server_by_key(bank):
    from zpomelo.router import crc32_key
    alice = login(bank, "alice", 0)
    key_for = {}
    for n in range(50):
        key_for.setdefault(("bank-1", "bank-2")[crc32_key("k%d" % n) % 2], "k%d" % n)
    for server_id, key in key_for.items():
        answer = alice.request("bank.bankHandler.open", {"routeKey": key})
        assert answer["server"] == server_id
    assert "bank.bankHandler.open" in bank["connector-1"].router._route_fns["bank"].module.SEEN
    bank["bank-1"].rpc.bank.bankRemote.notes("k1")
    assert "bankRemote.notes" in bank["bank-1"].router._route_fns["bank"].module.SEEN
