"""The quick game's page (examples/quick/web) in headless Chromium against the template's cluster.

`zpomelo init --template quick` in a temporary directory, the cluster in this process on free
ports (the connector serves the page on its webPort); tests/db/e2e_quick.mjs drives two pages:
join an area, move (the other page sees the move pushed), pick up an item and give it across.
A screenshot is left in tests/artifacts/quick-e2e.png.
"""
import json
import os
import subprocess
import sys

import gevent.subprocess
import pytest

from tests.browser import skip_without_browser
from zpomelo.testing import InProcessCluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tests", "db", "e2e_quick.mjs")
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")


@pytest.mark.timeout(150)
def test_two_pages_join_move_and_give_an_item(tmp_path):
    skip_without_browser()
    project = tmp_path / "quick"
    run = subprocess.run([sys.executable, "-m", "zpomelo.cli", "init", "--template", "quick",
                          str(project)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    with InProcessCluster(str(project), "test") as cluster:
        connector = cluster["connector-server-1"]
        web_port = connector.get("webPort")
        assert web_port, "the connector's page server did not start"
        run = gevent.subprocess.run(["node", SCRIPT, "http://127.0.0.1:%d/" % web_port, ARTIFACTS],
                                    capture_output=True, text=True, timeout=120, cwd=ROOT)
        lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
        assert lines, "no result from the browser script:\n%s\n%s" % (run.stdout[-3000:],
                                                                       run.stderr[-3000:])
        result = json.loads(lines[-1])
        assert result["ok"], "browser run failed after steps %s:\n%s\n%s" % (
            result["steps"], result.get("error"), run.stderr[-3000:])
        assert run.returncode == 0
        assert not any("page error" in s for s in result["steps"]), result["steps"]
        # what the pages showed is what the store holds
        bob = cluster.connect("connector-server-1")
        assert bob.request("connector.entryHandler.login", {"uid": "bob"})["code"] == 200
        player = bob.request("player.playerHandler.me", {})["player"]
        assert (player["area_id"], player["x"], player["y"], player["items"]) == \
            ("town", 3, 4, ["sword"])
    assert os.path.getsize(os.path.join(ARTIFACTS, "quick-e2e.png")) > 0


def test_the_page_gets_zpomelos_browser_client_from_the_package():
    """The quick page keeps no copy of the Pomelo client (nor of the modules and styles it shares
    with the chat page): its server answers ./pomelo-client.mjs from zpomelo/web/ (the client the
    JS tests cover)."""
    from zpomelo import static_site
    site = static_site.site(os.path.join(ROOT, "examples", "quick", "web"), {})
    for name in ("pomelo-client.mjs", "pomelo-protocol.mjs", "server-address.mjs", "page.css"):
        assert not os.path.exists(os.path.join(ROOT, "examples", "quick", "web", name))
        got = {}
        body = b"".join(site({"REQUEST_METHOD": "GET", "PATH_INFO": "/" + name},
                             lambda status, headers: got.update(status=status)))
        with open(os.path.join(static_site.CLIENT_DIR, name), "rb") as f:
            assert got["status"] == "200 OK" and body == f.read()