"""A real frontend process (tests/apps/resume) and a TCP proxy in front of it."""
import json
import os
import sys

import pytest
from gevent import subprocess

from .proxy import TcpProxy
from zpomelo.testing import wait_until

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps", "resume")
WINDOW = 3.0


def start_frontend(tmp_path, window=WINDOW, buffer=2048, heartbeat=0.5):
    """(process, client port) of tests/apps/resume's connector-1 as its own process."""
    ready = tmp_path / "ready.json"
    env = dict(os.environ, TEST_RESUME_WINDOW=str(window), TEST_RESUME_BUFFER=str(buffer),
               TEST_HEARTBEAT=str(heartbeat))
    proc = subprocess.Popen([sys.executable, "-m", "zpomelo.server", "--dir", APP_DIR, "--env",
                             "test", "--id", "connector-1", "--ready-file", str(ready),
                             "--log-dir", str(tmp_path / "logs")], env=env)
    try:
        wait_until(ready.exists, 30, interval=0.02, message="the resume frontend to be ready")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, json.loads(ready.read_text())["clientPort"]


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def frontend(tmp_path_factory):
    proc, port = start_frontend(tmp_path_factory.mktemp("resume-frontend"))
    yield proc, port
    stop(proc)


@pytest.fixture
def proxy(frontend):
    p = TcpProxy("127.0.0.1", frontend[1])
    yield p
    p.close()
