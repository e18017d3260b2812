"""The ordering guarantees in real server processes (`zpomelo start` of tests/apps/cluster:
two frontends, two chat backends, an area), real TCP and WebSocket clients."""
import pytest

from zpomelo.client import Client
from zpomelo.testing import wait_until
from zpomelo.testing.process_cluster import ProcessCluster, copy_project

from tests.ordering.conftest import APP_DIR, EchoLoad, overtakes

pytestmark = pytest.mark.timeout(240)

REQUESTS = 400


def _client(port, transport, uid, rid):
    client = Client.connect("127.0.0.1", port, transport)
    assert client.request("connector.entryHandler.entry", {"uid": uid, "rid": rid})["code"] == 200
    return client


def test_own_pushes_before_answers_and_ordered_runs_between_processes(tmp_path):
    project = copy_project(APP_DIR, tmp_path / "cluster", "test")
    with ProcessCluster(project, "test") as cluster:
        wait_until(lambda: len(cluster.servers()) >= 5, 30, message="every server registered")
        servers = cluster.servers()
        ports = {sid: servers[sid]["clientPort"] for sid in ("connector-1", "connector-2")}
        clients = []
        try:
            for transport, frontend in (("tcp", "connector-1"), ("ws", "connector-2")):
                client = _client(ports[frontend], transport, "p-" + transport, "proc-room-" + transport)
                clients.append(client)
                overtaken = overtakes(client, REQUESTS, timeout=60)
                assert overtaken == [], "%s: %d of %d answers overtook their push" % (
                    transport, len(overtaken), REQUESTS)

            # runs of numbered pushes from one backend to one session, while others load it
            runner = _client(ports["connector-2"], "tcp", "runner", "proc-runs")
            others = [_client(ports["connector-1"], "ws", "loader-%d" % i, "proc-runs") for i in range(4)]
            clients += [runner] + others
            seen = {}
            runner.on("onSeq", lambda body: seen.setdefault(body["tag"], []).append(body["n"]))
            load = EchoLoad(others)
            results = []
            for tag in range(6):
                runner.request_async("chat.chatHandler.push_many", {"count": 500, "tag": tag},
                                     lambda error, body: results.append((error, body)))
            wait_until(lambda: len(results) == 6, timeout=60, message="the runs answered")
            # the answers came after their pushes: every run is whole already
            assert sum(len(v) for v in seen.values()) == 6 * 500
            load.stop()
            assert all(error is None and body == {"pushed": 500} for error, body in results)
            for tag in range(6):
                assert seen[tag] == list(range(500)), "run %d out of order" % tag
        finally:
            for client in clients:
                client.close()
