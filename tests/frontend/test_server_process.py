"""The server as a real process: lifecycle hooks in order, SIGTERM drains in-flight requests."""
import json
import os
import signal
import sys

import pytest
from gevent import subprocess

from zpomelo.client import Client
from zpomelo.testing import wait_until

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "apps", "frontend")
pytestmark = pytest.mark.timeout(60)


def test_sigterm_drains_in_flight_requests_and_runs_hooks(tmp_path):
    ready, hooks = tmp_path / "ready.json", tmp_path / "hooks.log"
    env = dict(os.environ, LIFECYCLE_LOG=str(hooks))
    proc = subprocess.Popen([sys.executable, "-m", "zpomelo.server", "--dir", APP_DIR, "--env", "test",
                             "--id", "connector-1", "--ready-file", str(ready),
                             "--log-dir", str(tmp_path / "logs")], env=env)
    try:
        wait_until(ready.exists, 20, interval=0.02, message="the server to be ready")
        port = json.loads(ready.read_text())["clientPort"]
        client = Client.connect("127.0.0.1", port)
        answers = []
        # 0.25 s: well inside the app's 0.5 s timeout filter, so only the drain is under test
        client.request_async("connector.entryHandler.slow", {"seconds": 0.25},
                             lambda err, body: answers.append((err, body)), timeout=10)
        wait_until(lambda: hooks.exists() and "slow_started" in hooks.read_text(), 5,
                   message="the slow handler to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        wait_until(lambda: answers, 5, message="the in-flight answer")
        assert answers == [(None, {"slept": 0.25})]
        client.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    names = [line.split()[0] for line in hooks.read_text().splitlines()]
    assert names == ["before_startup", "after_startup", "slow_started", "before_shutdown"]


def test_a_bad_server_id_exits_with_a_clear_message(tmp_path):
    run = subprocess.run([sys.executable, "-m", "zpomelo.server", "--dir", APP_DIR, "--env", "test",
                          "--id", "nope-1"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert "no server 'nope-1' in the test environment" in run.stderr
    assert "connector-1" in run.stderr
