"""Prometheus metrics of a real cluster: the chat example under `zpomelo start`, real clients,
every server's /metrics scraped over HTTP and parsed with prometheus_client's own parser, and
the master's service-discovery file following servers as they come and go."""
import json
import urllib.error
import urllib.request

import gevent
import gevent.event
import pytest
from prometheus_client.parser import text_string_to_metric_families

from zpomelo.client import Client
from zpomelo.testing import rounds, wait_until
from zpomelo.testing.process_cluster import ProcessCluster, copy_project

pytestmark = pytest.mark.timeout(150)

CHAT = __import__("pathlib").Path(__file__).resolve().parents[2] / "examples" / "chat"
USERS = 6           # clients, each on its own connection
SENDS = 15          # good chat messages per user
BAD_SENDS = 2       # messages the chat handler refuses (HandlerError: status "error")


def chat_project(tmp_path):
    project = copy_project(CHAT, tmp_path / "chat", "test")
    master = project / "config" / "master.json"
    data = json.loads(master.read_text())
    data["test"] = {"id": "master-server-1", "host": "127.0.0.1", "port": 0, "metricsPort": 0}
    master.write_text(json.dumps(data))
    return project


def scrape(host, port):
    """{(sample name, frozen labels): value} of one /metrics endpoint, through the library's parser."""
    with urllib.request.urlopen("http://%s:%d/metrics" % (host, port), timeout=5) as reply:
        assert reply.status == 200
        text = reply.read().decode("utf-8")
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def refused(host, port):
    try:
        scrape(host, port)
    except (urllib.error.URLError, OSError):
        return True
    return False


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(scrapes, name, **labels):
    return sum(value(s, name, **labels) for s in scrapes.values())


def user_session(gate_port, n, ready, go):
    """Through the gate to a connector, enter the room, chat; returns the open client."""
    name = "user%d" % n
    with Client.connect("127.0.0.1", gate_port, timeout=5) as gate:
        entry = gate.request("gate.gateHandler.queryEntry", {"uid": name})
    assert entry["code"] == 200, entry
    client = Client.connect(entry["host"], entry["port"], transport="ws", timeout=5)
    reply = client.request("connector.entryHandler.enter", {"username": name, "rid": "lobby"})
    assert "users" in reply, reply
    ready.append(name)
    go.wait(30)
    message = {"rid": "lobby", "content": "hi", "from": name, "target": "*"}
    for _ in range(SENDS):
        assert client.request("chat.chatHandler.send", message) == {"code": 200}
    for _ in range(BAD_SENDS):
        assert client.request("chat.chatHandler.send", dict(message, content=""))["code"] == 500
    return client


def targets(path):
    """{server_id: (target, server_type)} of the SD file."""
    entries = json.loads(path.read_text())
    assert isinstance(entries, list)
    out = {}
    for entry in entries:
        assert set(entry) == {"targets", "labels"} and len(entry["targets"]) == 1, entry
        labels = entry["labels"]
        assert set(labels) == {"server_id", "server_type"}, labels
        out[labels["server_id"]] = (entry["targets"][0], labels["server_type"])
    return out


def test_every_server_counts_the_chat_requests_it_served_and_the_sd_file_follows(tmp_path):
    project = chat_project(tmp_path)
    with ProcessCluster(project, "test") as cluster:
        rows = cluster.servers()
        servers = [sid for sid in rows if rows[sid]["serverType"] != "master"]
        assert sorted(servers) == ["chat-server-1", "chat-server-2", "connector-server-1",
                                   "connector-server-2", "gate-server-1"]
        assert all(rows[sid]["metricsPort"] for sid in rows), rows     # master included
        endpoints = {sid: ("127.0.0.1", rows[sid]["metricsPort"]) for sid in rows}

        # the SD file lists the master and every server, with their types
        sd_path = project / "logs" / "prometheus-targets-test.json"
        listed = targets(sd_path)
        assert listed == {sid: ("127.0.0.1:%d" % rows[sid]["metricsPort"],
                                rows[sid]["serverType"]) for sid in rows}, listed

        # chat load: the clients enter, then all chat at once while /metrics is scraped
        gate_port = rows["gate-server-1"]["clientPort"]
        ready, go = [], gevent.event.Event()
        sessions = [gevent.spawn(user_session, gate_port, n, ready, go) for n in range(USERS)]
        wait_until(lambda: len(ready) == USERS or any(g.dead for g in sessions), 30,
                   message="every user in the room")
        go.set()
        during = []
        for _ in rounds(lambda: all(g.dead for g in sessions), seconds=120):
            during.append({sid: scrape(*endpoints[sid]) for sid in servers})
            gevent.sleep(0.05)
        assert all(g.dead for g in sessions), "the chat load did not end within 120 s"
        clients = [g.get() for g in sessions]
        assert during, "no scrape happened during the load"

        after = {sid: scrape(*endpoints[sid]) for sid in servers}
        # exact counts of the routes the clients called, wherever they ran
        count = "zpomelo_handler_seconds_count"
        assert total(after, count, route="gate.gateHandler.queryEntry", status="ok") == USERS
        assert total(after, count, route="connector.entryHandler.enter", status="ok") == USERS
        assert total(after, count, route="chat.chatHandler.send", status="ok") == USERS * SENDS
        assert total(after, count, route="chat.chatHandler.send", status="error") \
            == USERS * BAD_SENDS
        # every bucket series ends in +Inf = count; the sums are times, positive
        for sid, samples in after.items():
            for (name, labels), n in samples.items():
                if name == count:
                    assert value(samples, "zpomelo_handler_seconds_bucket",
                                 **dict(labels, le="+Inf")) == n
                    assert value(samples, "zpomelo_handler_seconds_sum", **dict(labels)) > 0
        # the chat requests were handled on the chat servers only; forwarded by the connectors
        for sid in ("gate-server-1", "connector-server-1", "connector-server-2"):
            assert value(after[sid], count, route="chat.chatHandler.send", status="ok") == 0
        forwarded = total(after, "zpomelo_rpc_client_seconds_count", target_type="chat",
                          method="_sys.forward")
        assert forwarded == USERS * (SENDS + BAD_SENDS)
        assert total(after, "zpomelo_rpc_client_seconds_count", target_type="chat",
                     method="chatRemote.add") == USERS
        assert total(after, "zpomelo_rpc_client_timeouts_total", target_type="chat",
                     method="_sys.forward") == 0
        # the chat servers answered those calls from their RPC pools
        assert sum(value(after[sid], "zpomelo_rpc_server_requests_total")
                   for sid in ("chat-server-1", "chat-server-2")) >= forwarded + USERS
        assert value(after["chat-server-1"], "zpomelo_rpc_server_pool_size") == 10000
        # handshakes: USERS at the gate and USERS on the connectors; the clients still connected
        assert total(after, "zpomelo_handshakes_total", code="200") == 2 * USERS
        assert total(after, "zpomelo_clients_connected") == USERS
        # each good message is one push (to the whole room); nothing dropped
        assert total(after, "zpomelo_pushes_sent_total") >= USERS * SENDS
        assert total(after, "zpomelo_bus_dropped_total") == 0
        # every server knows the whole cluster, and reports its process
        for sid, samples in after.items():
            for server_type, n in (("gate", 1), ("connector", 2), ("chat", 2)):
                assert value(samples, "zpomelo_membership_servers", server_type=server_type) == n
            assert value(samples, "process_resident_memory_bytes") > 0
            assert value(samples, "process_open_fds") > 0
            assert value(samples, "zpomelo_requests_in_flight", kind="rpc") == 0
        # counters never went down between scrapes during the load
        for earlier, later in zip(during, during[1:] + [after]):
            for sid in servers:
                for key, n in earlier[sid].items():
                    if key[0].endswith("_total") or key[0].endswith("_count"):
                        assert later[sid].get(key, 0) >= n, (sid, key)

        master = scrape(*endpoints["master-server-1"])
        for sid in servers:
            assert (("zpomelo_server_restarts_total",
                     frozenset({"server_id": sid, "server_type": rows[sid]["serverType"]}.items()))
                    in master)
        assert value(master, "zpomelo_membership_servers", server_type="chat") == 2

        # a server added at run time appears in the SD file, and leaves it when stopped
        before = sd_path.read_text()
        cluster.zpomelo("add", "-e", "test", *cluster.auth, "id=chat-server-3",
                        "host=127.0.0.1", "port=0", "serverType=chat")
        wait_until(lambda: "chat-server-3" in targets(sd_path), 15, message="chat-server-3 listed")
        assert sd_path.read_text() != before
        added = targets(sd_path)["chat-server-3"]
        assert added[1] == "chat"
        host, port = added[0].rsplit(":", 1)
        assert value(scrape(host, int(port)), "zpomelo_membership_servers", server_type="chat") == 3
        cluster.zpomelo("stop", "-e", "test", *cluster.auth, "chat-server-3")
        wait_until(lambda: "chat-server-3" not in targets(sd_path), 15,
                   message="chat-server-3 gone from the SD file")
        assert set(targets(sd_path)) == set(rows)
        wait_until(lambda: refused(host, int(port)), 15, message="chat-server-3's /metrics closed")
        for client in clients:
            client.close()
    assert targets(sd_path) == {}       # the cluster is stopped: nothing left to scrape
