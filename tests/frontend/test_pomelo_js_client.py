"""Pomelo's own client codec (npm pomelo-protocol, under node with `ws`) against a zpomelo frontend."""
import json
import os
import shutil
from gevent import subprocess

import pytest

NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "node")
SCRIPT = os.path.join(NODE_DIR, "pomelo_protocol_client.js")


def _node_ready():
    return shutil.which("node") and os.path.isdir(os.path.join(NODE_DIR, "node_modules", "pomelo-protocol"))


@pytest.mark.timeout(60)
def test_pomelo_protocol_client_works_unchanged(frontend):
    if not _node_ready():
        if os.environ.get("CI"):
            pytest.fail("node and tests/node/node_modules are required in CI (tests/install-system-deps.sh)")
        pytest.skip("node or tests/node/node_modules missing: run tests/install-system-deps.sh")
    port = frontend.current_server.client_port
    run = subprocess.run(["node", SCRIPT, str(port)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    results = out["results"]
    assert results["handshake"] == {"code": 200, "heartbeat": 1, "user": {"welcome": "node"}}
    assert results["heartbeats"] >= 2  # one after the ACK, one answering ours
    assert results["responses"]["connector.entryHandler.echo"] == {"hello": "pomelo"}
    assert results["responses"]["connector.entryHandler.login"] == {"code": 200, "uid": "node-user"}
    assert results["pushes"] == [{"route": "onPush", "compressed": True, "body": {"from": "node"}}]
