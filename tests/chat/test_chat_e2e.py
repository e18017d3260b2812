"""End to end: the chat page in headless Chromium against the chat example's cluster.

The cluster (gate with its page server, 2 connectors, 2 chat servers) runs in this process on free
ports; tests/chat/e2e_chat.mjs drives three browser pages through playwright-core and Debian's
chromium, and leaves a screenshot in tests/artifacts/chat-e2e.png.
"""
import json
import os

import gevent.subprocess
import pytest

from tests.browser import skip_without_browser
from zpomelo.testing import InProcessCluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHAT_DIR = os.path.join(ROOT, "examples", "chat")
SCRIPT = os.path.join(ROOT, "tests", "chat", "e2e_chat.mjs")
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")


@pytest.mark.timeout(120)
def test_two_pages_chat_privately_and_see_each_other_leave():
    skip_without_browser()
    with InProcessCluster(CHAT_DIR, "test") as cluster:
        web_port = cluster["gate-server-1"].get("webPort")
        assert web_port, "the gate's page server did not start"
        run = gevent.subprocess.run(
            ["node", SCRIPT, "http://127.0.0.1:%d/" % web_port, ARTIFACTS],
            capture_output=True, text=True, timeout=100, cwd=ROOT)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, "no result from the browser script:\n%s\n%s" % (run.stdout[-3000:], run.stderr[-3000:])
    result = json.loads(lines[-1])
    assert result["ok"], "browser run failed after steps %s:\n%s\n%s" % (
        result["steps"], result.get("error"), run.stderr[-3000:])
    assert run.returncode == 0
    assert "closing carol's page shows her leaving" in result["steps"]
    assert not any("page error" in s for s in result["steps"]), result["steps"]
    assert os.path.getsize(os.path.join(ARTIFACTS, "chat-e2e.png")) > 0
