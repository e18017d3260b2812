"""What a player can rely on: a push a handler makes to its own session before returning arrives
before the answer; pushes from one server to one session arrive in the order sent.

Real in-process cluster (two frontends, chat backends), real TCP and WebSocket clients.
"""
import pytest

from zpomelo.testing import wait_until

from tests.ordering.conftest import EchoLoad, overtakes

pytestmark = pytest.mark.timeout(90)

REQUESTS = 300


def _enter(client, uid, rid):
    assert client.request("connector.entryHandler.entry", {"uid": uid, "rid": rid})["code"] == 200


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_a_push_to_the_own_session_arrives_before_the_answer(cluster, connect, transport):
    client = connect("connector-1", transport)
    _enter(client, "order-" + transport, "order-room-" + transport)
    bus_stats = cluster["connector-1"].bus.stats
    timeouts_before = bus_stats["mark_timeouts"]
    overtaken = overtakes(client, REQUESTS, timeout=30)
    assert overtaken == [], "%d of %d answers overtook their push" % (len(overtaken), REQUESTS)
    assert bus_stats["mark_timeouts"] == timeouts_before    # no answer waited for a lost push


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_pushes_from_one_backend_to_one_session_keep_their_order_under_load(cluster, connect, transport):
    """Several requests at once, each pushing a numbered run from the same backend: every run
    arrives whole and in order, while other clients load the same backend."""
    client = connect("connector-2", transport)
    _enter(client, "seq-" + transport, "seq-room-" + transport)
    others = [connect("connector-1") for _ in range(4)]
    for i, other in enumerate(others):
        _enter(other, "seq-other-%s-%d" % (transport, i), "seq-room-" + transport)
    seen = {}
    client.on("onSeq", lambda body: seen.setdefault(body["tag"], []).append(body["n"]))
    load = EchoLoad(others)
    try:
        runs = 6
        count = 500
        results = []
        for tag in range(runs):
            client.request_async("chat.chatHandler.push_many", {"count": count, "tag": tag},
                                 lambda error, body: results.append((error, body)))
        wait_until(lambda: len(results) == runs, timeout=60)
        assert all(error is None and body == {"pushed": count} for error, body in results)
        wait_until(lambda: sum(len(v) for v in seen.values()) == runs * count, timeout=30)
    finally:
        load.stop()
    assert sorted(seen) == list(range(runs))
    for tag, numbers in seen.items():
        assert numbers == list(range(count)), "run %s out of order" % tag
