"""examples/bench runs under the real command line: `zpomelo list` and `zpomelo stop` work there
(it had no config/adminUser.json, so both were refused and its cluster could only be killed),
and `list` shows a frontend's bad client input."""
import os
import shutil
import socket

import pytest

from zpomelo.master import procinfo
from zpomelo.testing import ProcessCluster, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_APP = os.path.join(ROOT, "examples", "bench")
pytestmark = pytest.mark.timeout(120)


def test_bench_app_lists_and_stops_through_the_cli(tmp_path):
    project = tmp_path / "bench"
    shutil.copytree(BENCH_APP, project, ignore=shutil.ignore_patterns("logs", "__pycache__"))
    cluster = ProcessCluster(project, "test").start()
    master_pid = cluster.master["pid"]
    try:
        rows = cluster.servers()
        frontend = rows["connector-server-1"]
        assert frontend["state"] == "running" and rows["chat-server-1"]["state"] == "running"
        with socket.create_connection(("127.0.0.1", frontend["clientPort"]), timeout=5) as sock:
            sock.sendall(b"\x09\x00\x00\x01x")          # not a Pomelo package: closed, counted
            assert sock.recv(100) == b""
        counted = wait_until(lambda: (cluster.servers()["connector-server-1"].get("badInput") or {}),
                             timeout=20, message="the bad package in list's badInput")
        assert counted == {"malformed package": 1}
        table = cluster.zpomelo("list", "-e", "test", *cluster.auth).stdout
        assert "bad input" in table.splitlines()[0]
    finally:
        stopped = cluster.zpomelo("stop", "-e", "test", *cluster.auth, check=False)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    wait_until(lambda: not procinfo.is_alive(master_pid), timeout=30, message="the master to exit")
