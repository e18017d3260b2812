"""ProcessCluster on a copy of a project: every port 0 whatever the files say, the admin user
from the project, and no process left after stop."""
import json
import os
import shutil

import pytest

from zpomelo.client import Client
from zpomelo.master import procinfo
from zpomelo.testing import ProcessCluster
from zpomelo.testing.process_cluster import copy_project

pytestmark = pytest.mark.timeout(120)

CLUSTER_APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps", "cluster")


def test_a_copy_with_fixed_ports_runs_on_free_ones_and_stops_clean(tmp_path, held_ports):
    original = tmp_path / "original"
    shutil.copytree(CLUSTER_APP, original)
    servers = json.loads((original / "config" / "servers.json").read_text())
    connector = servers["test"]["connector"][0]
    connector.update(port=held_ports[0], clientPort=held_ports[1], busPort=held_ports[2])
    (original / "config" / "servers.json").write_text(json.dumps(servers))
    (original / "config" / "master.json").write_text(json.dumps(
        {"test": {"id": "master", "host": "127.0.0.1", "port": held_ports[3]}}))

    project = copy_project(original, tmp_path / "run", "test")
    cluster = ProcessCluster(project, "test").start()         # admin user read from the project
    try:
        rows = cluster.servers()
        assert {"connector-1", "connector-2", "chat-1", "chat-2", "area-1"} <= set(rows)
        assert all(row["state"] == "running" for row in rows.values())
        assert rows["connector-1"]["clientPort"] not in held_ports
        client = Client.connect("127.0.0.1", rows["connector-1"]["clientPort"])
        assert client.request("connector.entryHandler.echo", {"x": 1})["server"] == "connector-1"
        client.close()
        pids = cluster.pids()
        assert len(pids) == len(rows)
    finally:
        cluster.stop()
    assert not [pid for pid in pids if procinfo.is_alive(pid)]
    assert (project / "logs").is_dir() and not (original / "logs").exists()


def test_a_project_without_admin_users_is_refused_with_the_reason(tmp_path):
    project = tmp_path / "game"
    shutil.copytree(CLUSTER_APP, project)
    (project / "config" / "adminUser.json").unlink()
    with pytest.raises(ValueError, match="no admin user in config/adminUser.json"):
        ProcessCluster(project, "test")
