"""Rate limits and global filters in real server processes (`zpomelo start` under the master),
real TCP and WebSocket clients: a client flooding at 10x its limit is limited, then kicked, while
the other clients on that frontend keep succeeding; a global refusal never reaches the backend
(counted there)."""
import gevent
import pytest

from zpomelo.client import Client, ConnectionClosed
from zpomelo.errors import CODE_RATE_LIMITED
from zpomelo.testing import rounds, wait_until
from zpomelo.testing.process_cluster import ProcessCluster, copy_project

from tests.limits.conftest import APP_DIR

pytestmark = pytest.mark.timeout(180)

WORK = "area.areaHandler.work"


def test_a_flooder_is_kicked_others_keep_going_and_refusals_never_reach_the_backend(tmp_path):
    project = copy_project(APP_DIR, tmp_path / "limits", "test")
    with ProcessCluster(project, "test") as cluster:
        wait_until(lambda: {"connector-1", "area-1"} <= set(cluster.servers()), 30,
                   message="both servers registered")
        port = cluster.servers()["connector-1"]["clientPort"]
        others = [Client.connect("127.0.0.1", port, transport) for transport in ("tcp", "ws", "tcp")]
        flooder = Client.connect("127.0.0.1", port, "ws")
        try:
            kicked = []
            flooder.on_kick(kicked.append)
            assert others[0].request(WORK, {"forbidden": True})["code"] == 403
            others[1].notify(WORK, {"forbidden": True})
            assert others[0].request(WORK, {"explode": True}) == {"code": 500, "error": "internal server error"}

            results = []
            stop = []

            def steady(client):
                for n in rounds(lambda: stop, seconds=180, limit=400):
                    results.append(client.request(WORK, {"n": n - 1})["code"])
                    gevent.sleep(0.05)

            loaders = [gevent.spawn(steady, c) for c in others]
            answers = []
            sent = 0
            for n in range(2000):          # 500/s (10x the limit of 50/s) until kicked
                if flooder.closed.is_set():
                    break
                try:
                    flooder.request_async(WORK, {"n": n}, lambda error, body: answers.append((error, body)))
                except ConnectionClosed:    # kicked between the check above and this send
                    break
                sent += 1
                if n % 50 == 49:
                    gevent.sleep(0.1)
            wait_until(lambda: flooder.closed.is_set(), 20, message="the flooder kicked")
            wait_until(lambda: len(results) >= 60, 30, message="the others' requests")
            stop.append(True)
            gevent.joinall(loaders, timeout=30)
            assert kicked == ["rate limit exceeded"]
            codes = [body["code"] for error, body in answers if error is None]
            first = codes.index(CODE_RATE_LIMITED)
            assert first >= 50 and codes[:first] == [200] * first
            limited = codes.count(CODE_RATE_LIMITED)
            assert limited >= 50   # (answers still queued behind slower ones die with the kick)
            assert len(results) >= 30 and set(results) == {200}

            # the backend process never saw a refused request: the same RPC connection is in
            # order, so one allowed request after them proves it
            assert others[0].request(WORK, {"n": -1})["code"] == 200
            seen = others[0].request("area.areaHandler.seen", {})
            assert seen["forbidden"] == 0
            # every answered 200 was handled there; no limited request was
            assert len(results) + codes.count(200) + 1 <= seen["requests"] <= len(results) + 1 + sent - limited
            stats = others[0].request("connector.entryHandler.answers_seen", {})
            assert stats["rateLimited"]["kicked"] == 1 and stats["rateLimited"]["requests"] >= 90
            assert stats["filters"]["refused"] == 3 and stats["filters"]["errors"] == 1
        finally:
            for client in others + [flooder]:
                client.close()
