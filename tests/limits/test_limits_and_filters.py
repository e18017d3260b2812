"""Rate limits and global filters on a real in-process frontend + backend, real TCP/WS clients.

The app (tests/apps/limits): 50 requests/s and 20,000 bytes/s per connection, kicked after 100
refusals in 10 s; a global before filter refusing bodies with "forbidden" (and failing on
"explode"), a global after filter counting answers; the backend counts what reaches it.
"""
import gevent
import pytest

from zpomelo.client import ConnectionClosed
from zpomelo.errors import CODE_RATE_LIMITED
from zpomelo.testing import rounds, wait_until

pytestmark = pytest.mark.timeout(60)

WORK = "area.areaHandler.work"


def _seen(client):
    return client.request("area.areaHandler.seen", {})


def _frontend_stats(client):
    return client.request("connector.entryHandler.answers_seen", {})


def test_a_global_refusal_answers_the_client_and_never_reaches_the_backend(cluster, connect):
    client = connect("connector-1")
    before = _seen(client)
    assert client.request(WORK, {"n": 1}) == {"code": 200, "n": 1, "pad": 0}
    assert client.request(WORK, {"forbidden": True}) == {
        "code": 403, "error": "refused by the frontend's global filter"}
    # one RPC connection, in order: a refusal that leaked would be counted before this answer
    assert client.request(WORK, {"n": 2})["n"] == 2
    after = _seen(client)
    assert after["requests"] == before["requests"] + 2          # the two allowed ones
    assert after["forbidden"] == 0


def test_a_global_before_filter_that_raises_refuses_with_a_clear_error(cluster, connect):
    client = connect("connector-1", "ws")
    before = _seen(client)
    assert client.request(WORK, {"explode": True}) == {"code": 500, "error": "internal server error"}
    client.notify(WORK, {"forbidden": True})       # a refused notify is dropped
    assert client.request(WORK, {"n": 2})["n"] == 2  # the connection keeps working
    after = _seen(client)
    assert after["forbidden"] == 0 and after["requests"] == before["requests"] + 1
    stats = _frontend_stats(client)
    assert stats["filters"]["errors"] >= 1 and stats["filters"]["refused"] >= 2


def test_global_after_filters_see_every_answer_and_one_that_raises_keeps_it(cluster, connect):
    client = connect("connector-1")
    seen_before = _frontend_stats(client)["seen"].get(WORK, 0)
    for n in range(5):
        assert client.request(WORK, {"n": n})["n"] == n
    assert client.request(WORK, {"n": 9, "explode_after": True}) == {"code": 200, "n": 9, "pad": 0}
    assert _frontend_stats(client)["seen"][WORK] == seen_before + 5


def test_a_message_over_the_byte_allowance_is_refused_not_handled(cluster, connect):
    client = connect("connector-1")
    before = _seen(client)
    answer = client.request(WORK, {"pad": "x" * 25000})
    assert answer["code"] == CODE_RATE_LIMITED
    assert "larger than this connection's byte allowance of 20000" in answer["error"]
    assert client.request(WORK, {"pad": "x" * 1000})["pad"] == 1000   # smaller ones still pass
    assert _seen(client)["requests"] == before["requests"] + 1     # only the small one
    assert _frontend_stats(client)["rateLimited"]["too big"] >= 1


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_a_flooder_is_limited_then_kicked_while_others_keep_succeeding(cluster, connect, transport):
    flooder = connect("connector-1", transport)
    others = [connect("connector-1") for _ in range(3)]
    kicked = []
    flooder.on_kick(kicked.append)
    answers = []
    stop = []
    other_results = []

    def steady(client):
        for n in rounds(lambda: stop, seconds=60, limit=200):
            other_results.append(client.request(WORK, {"n": n - 1})["code"])
            gevent.sleep(0.05)          # 20/s: well under the 50/s limit

    loaders = [gevent.spawn(steady, c) for c in others]
    # 10x the limit: 500 requests/s for up to 2 s, until the kick closes the connection
    for n in range(1000):
        if flooder.closed.is_set():
            break
        try:
            flooder.request_async(WORK, {"n": n}, lambda error, body: answers.append((error, body)))
        except ConnectionClosed:    # kicked between the check above and this send
            break
        if n % 50 == 49:
            gevent.sleep(0.1)
    wait_until(lambda: flooder.closed.is_set(), timeout=10, message="the flooder to be kicked")
    wait_until(lambda: len(other_results) >= 60, timeout=30, message="the others' requests")
    stop.append(True)
    gevent.joinall(loaders, timeout=20)
    assert kicked == ["rate limit exceeded"]
    codes = [body["code"] for error, body in answers if error is None]
    assert codes.count(200) >= 50                              # the burst went through
    limited = [body for error, body in answers if error is None and body["code"] == CODE_RATE_LIMITED]
    assert len(limited) >= 50   # answers still queued behind slower ones die with the kick
    assert "rate limit: more than 50 requests/s" in limited[0]["error"]
    first_limited = codes.index(CODE_RATE_LIMITED)
    assert codes[:first_limited] == [200] * first_limited       # limited first, then the kick
    assert other_results and set(other_results) == {200}        # nobody else was refused
    stats = _frontend_stats(others[0])["rateLimited"]
    assert stats["requests"] >= 100 and stats["kicked"] >= 1
    # coming back at once does not buy a fresh burst: its buckets start empty
    again = connect("connector-1", transport)
    burst = []
    for n in range(10):     # all at once: a fresh bucket would pass every one
        again.request_async(WORK, {"n": n}, lambda error, body: burst.append(body["code"]))
    wait_until(lambda: len(burst) == 10, timeout=10, message="the answers")
    assert burst.count(CODE_RATE_LIMITED) >= 5, burst
