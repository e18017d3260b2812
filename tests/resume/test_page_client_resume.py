"""The chat page's JavaScript client (zpomelo/web/pomelo-client.mjs) resumes by itself:
under node with `ws`, through the test's TCP proxy, against the real resume frontend."""
import json
import os
import shutil

import pytest
from gevent import subprocess

from zpomelo.client import Client
from zpomelo.testing import wait_until

from .conftest import start_frontend, stop

NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "node")
SCRIPT = os.path.join(NODE_DIR, "page_client_resume.mjs")
PUSHES = 1000


@pytest.fixture(scope="module")
def frontend(tmp_path_factory):
    """The resume frontend with 2 s heartbeats, not the shared 0.5 s. The page client sends its
    next heartbeat a heartbeat after the server's answer arrives (as Pomelo's client does), and
    the server closes after twice that without one: with 0.5 s, a round trip through the proxy
    slower than 0.25 s (a loaded machine) ends the connection (a second drop and resume was seen
    under load). This test cuts the link; it needs no quick heartbeats."""
    proc, port = start_frontend(tmp_path_factory.mktemp("page-frontend"), heartbeat=2.0)
    yield proc, port
    stop(proc)


@pytest.mark.timeout(90)
def test_the_chat_page_client_resumes_with_every_push_once_in_order(frontend, proxy):
    if not (shutil.which("node") and os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws"))):
        pytest.skip("node or tests/node/node_modules missing: run tests/install-system-deps.sh")
    node = subprocess.Popen(["node", SCRIPT, str(proxy.port), str(PUSHES)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    bob = Client.connect("127.0.0.1", frontend[1])
    try:
        assert bob.request("connector.roomHandler.login", {"uid": "bob-page"})["code"] == 200
        line = node.stdout.readline()
        sid = json.loads(line)["ready"]
        answers = []
        bob.request_async("connector.roomHandler.flood", {"count": PUSHES, "pause": 0.005},
                          lambda err, body: answers.append((err, body)), timeout=60)
        assert json.loads(node.stdout.readline()) == {"seen": 200}
        proxy.cut()
        out, err = node.communicate(timeout=60)
        assert node.returncode == 0, out + err
        done = json.loads(out.strip().splitlines()[-1])["done"]
        assert done["seen"] == list(range(PUSHES))
        assert done["whoami"] == {"uid": "page-user", "sid": sid, "color": "green", "inRoom": True}
        assert [e[0] for e in done["events"]] == ["drop", "resumed"], done["events"]
        assert done["pushesCounted"] == PUSHES
        # the script's disconnect() at the end is a WebSocket close frame: a goodbye, no window
        def events_of_page():
            return [e for e in bob.request("connector.roomHandler.events")["events"] if e[1] == sid]
        wait_until(lambda: len(events_of_page()) == 3, 10, message="the page's goodbye")
        events = events_of_page()
        assert [e[0] for e in events] == ["drop", "resume", "closed"]
        assert events[2][3] == "client closed"
    finally:
        if node.poll() is None:
            node.kill()
            node.communicate()
        bob.close()
