"""The web console in headless Chromium against a real cluster (examples/chat, processes under
the master): login refused without a session and with a wrong password, a watch-only user
refused an action server-side, the live server table following an add, a kill and a stop done
from the page and a kill -9 done outside it, and the routes/rpc/users/logs pages. Screenshots go to tests/artifacts/console-*.png.
"""
import json
import os
import signal

import gevent.subprocess
import pytest

from tests.browser import skip_without_browser
from zpomelo.client import Client

from .conftest import OPERATOR, ROOT, WATCHER

SCRIPT = os.path.join(ROOT, "tests", "console", "e2e_console.mjs")
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")


def run_browser(args, on_wait, timeout=200):
    """Run the browser script; when it prints {"waiting": name}, call on_wait[name]() (the
    script then watches the page for the effect). Returns (stdout, stderr, returncode)."""
    proc = gevent.subprocess.Popen(["node", SCRIPT] + args, stdout=gevent.subprocess.PIPE,
                                   stderr=gevent.subprocess.PIPE, text=True, cwd=ROOT)
    err = gevent.spawn(proc.stderr.read)
    out = []
    try:
        with gevent.Timeout(timeout):
            for line in proc.stdout:
                out.append(line)
                if line.startswith('{"waiting"'):
                    on_wait[json.loads(line)["waiting"]]()
            proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return "".join(out), err.get(timeout=10), proc.returncode


@pytest.mark.timeout(240)
def test_the_console_in_chromium_logs_in_watches_and_acts(console_cluster):
    skip_without_browser()
    cluster, url = console_cluster
    before = cluster.servers()
    port = before["connector-server-2"]["clientPort"]
    clients = []
    try:
        for name in ("dora", "eli"):
            c = Client.connect("127.0.0.1", port, transport="ws")
            clients.append(c)
            c.request("connector.entryHandler.enter", {"username": name, "rid": "deck"})
        settings = {"operator": list(OPERATOR), "watcher": list(WATCHER),
                    "servers": sorted(sid for sid, row in before.items()
                                      if row["serverType"] != "master"),
                    "uids": ["dora*deck", "eli*deck"]}
        stdout, stderr, returncode = run_browser(
            [url + "/", ARTIFACTS, json.dumps(settings)],
            on_wait={"kill -9 chat-server-1": lambda: os.kill(before["chat-server-1"]["pid"],
                                                              signal.SIGKILL)})
    finally:
        for c in clients:
            c.close()
    print("screenshots in", ARTIFACTS)
    lines = [line for line in stdout.splitlines() if line.startswith('{"ok"')]
    assert lines, "no result from the browser script:\n%s\n%s" % (stdout[-3000:],
                                                                  stderr[-3000:])
    result = json.loads(lines[-1])
    assert result["ok"], "browser run failed after steps %s:\n%s\n%s" % (
        result["steps"], result.get("error"), stderr[-3000:])
    assert not any("page error" in s for s in result["steps"]), result["steps"]
    assert returncode == 0
    assert "a server killed outside the console is shown down" in result["steps"]
    # what the page showed is what the master knows
    after = cluster.servers()
    assert after["chat-server-3"]["state"] == "stopped" and after["chat-server-3"]["pid"] is None
    assert after["chat-server-2"]["state"] == "stopped" and after["chat-server-2"]["pid"] is None
    assert after["chat-server-1"]["state"] == "down" and after["chat-server-1"]["pid"] is None
    assert after["chat-server-1"]["restarts"] == 0     # no auto-restart in this project
    for name in ("console-cluster.png", "console-routes.png", "console-users.png",
                 "console-logs.png", "console-login-refused.png"):
        assert os.path.getsize(os.path.join(ARTIFACTS, name)) > 0, name
