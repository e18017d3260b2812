"""Session resume in the chat example run by the real command line (`zpomelo start`: gate, two
connectors, two chat servers, each its own process). Bob, on the other connector, sends 1,000
messages to the room; the chat server pushes them over the bus. Alice's link (WebSocket, through
the test's TCP proxy) is cut mid-way: she gets every message exactly once, in order, and talks
again without entering the room again."""
import json
import os

import pytest

from zpomelo.client import Client
from zpomelo.testing import wait_until
from zpomelo.testing.process_cluster import ProcessCluster, copy_project

from .proxy import TcpProxy
from .test_resume_process import cut_when

pytestmark = pytest.mark.timeout(180)
CHAT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "examples", "chat")
MESSAGES = 1000
SERVERS = ["gate-server-1", "connector-server-1", "connector-server-2", "chat-server-1", "chat-server-2"]


def enter(client, username):
    reply = client.request("connector.entryHandler.enter", {"username": username, "rid": "lobby"})
    assert "users" in reply, reply
    return reply


def say(client, text, done):
    client.request_async("chat.chatHandler.send", {"rid": "lobby", "content": text, "from": "x",
                                                   "target": "*"},
                         lambda err, body: done.append((err, body)), timeout=60)


def test_a_chat_player_cut_off_mid_conversation_resumes_with_every_message(tmp_path):
    project = copy_project(CHAT_DIR, tmp_path / "chat", "test")
    master = project / "config" / "master.json"       # the example has no test master: add one
    conf = json.loads(master.read_text())
    conf["test"] = {"id": "master-server-1", "host": "127.0.0.1", "port": 0}
    master.write_text(json.dumps(conf))
    with ProcessCluster(project, "test") as cluster:
        wait_until(lambda: set(SERVERS) <= set(cluster.servers()), 60, message="the chat cluster")
        ports = {sid: record["clientPort"] for sid, record in cluster.servers().items()}
        proxy = TcpProxy("127.0.0.1", ports["connector-server-1"])
        alice = Client.connect("127.0.0.1", proxy.port, "ws", resume=True)
        bob = Client.connect("127.0.0.1", ports["connector-server-2"], "ws")
        try:
            heard = []
            alice.on("onChat", lambda chat: heard.append(chat["msg"]) if chat["from"] == "bob" else None)
            enter(alice, "alice")
            enter(bob, "bob")
            cutter = cut_when(heard, 200, proxy.cut)
            done = []
            for n in range(MESSAGES):
                say(bob, "m%d" % n, done)
                if n % 100 == 99:      # at most 100 in flight (maxInFlight is 1000)
                    wait_until(lambda: len(done) >= n - 50, 60, message="bob's answers")
            cutter.get(timeout=60)
            wait_until(lambda: len(done) == MESSAGES, 60, message="every send answered")
            assert all(err is None and body.get("code", 200) == 200 for err, body in done), done[:3]
            wait_until(lambda: len(heard) >= MESSAGES, 60, message="every message after the resume")
            assert heard == ["m%d" % n for n in range(MESSAGES)]
            assert alice.reconnects == 1 and alice.wait_connected(10)
            # no new enter: the session still has its room and uid
            bob_heard = []
            bob.on("onChat", lambda chat: bob_heard.append(chat) if chat["from"] == "alice" else None)
            answer = alice.request("chat.chatHandler.send", {"rid": "lobby", "content": "back",
                                                             "from": "alice", "target": "*"})
            assert answer.get("code", 200) == 200, answer
            wait_until(lambda: bob_heard, 10, message="bob hears alice again")
            assert bob_heard[0]["msg"] == "back"
        finally:
            alice.close()
            bob.close()
            proxy.close()
