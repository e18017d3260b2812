"""The command line with masterHA: clear errors when ZooKeeper or the cluster is not there, a
standby on another host is left to that host, `zpomelo masterha` brings a master back."""
import json
import time

import pytest

from master.cli_project import kill_project, project_pids, zpomelo
from zookeeper_server import free_port

from .conftest import ENV, write_ha_project

pytestmark = pytest.mark.timeout(120)


def run(base, *args):
    return zpomelo(base, *args, "-e", ENV)


def test_without_zookeeper_every_verb_says_where_it_looked(tmp_path):
    base = write_ha_project(tmp_path / "chat", "127.0.0.1:%d" % free_port())
    try:
        for args in (("start", "-D"), ("list",), ("masterha",)):
            result = run(base, *args)
            assert result.returncode != 0, args
            assert "cannot reach ZooKeeper at 127.0.0.1:" in result.stderr, (args, result.stderr)
        assert not project_pids(base)
    finally:
        kill_project(base)


def test_masterha_needs_masterha_and_a_running_cluster(tmp_path, zookeeper):
    base = write_ha_project(tmp_path / "chat", zookeeper.hosts)
    try:
        result = run(base, "masterha", "-i", "nope")
        assert result.returncode != 0 and "no master with id 'nope'" in result.stderr
        result = run(base, "masterha")          # nothing was ever started: nothing to stand by for
        assert result.returncode != 0
        assert "no running cluster to take over" in result.stderr + result.stdout
        result = run(base, "list")
        assert result.returncode != 0 and "no master leads the cluster" in result.stderr
        conf = base / "config" / "master.json"
        master = json.loads(conf.read_text())
        del master[ENV]["masterHA"]
        conf.write_text(json.dumps(master))
        result = run(base, "masterha")
        assert result.returncode != 0 and "masterHA is not enabled" in result.stderr
    finally:
        kill_project(base)


def test_start_leaves_a_remote_standby_to_its_host_and_stop_ends_every_master(tmp_path,
                                                                             zookeeper):
    base = write_ha_project(tmp_path / "chat", zookeeper.hosts, standbys=2)
    conf = base / "config" / "master.json"
    master = json.loads(conf.read_text())
    master[ENV]["masterHA"]["standbys"][1]["host"] = "10.99.0.3"     # another machine
    conf.write_text(json.dumps(master))
    try:
        result = run(base, "start", "-D")
        assert result.returncode == 0, result.stderr
        assert "standby master master-server-2 started" in result.stdout
        assert "standby master master-server-3 is on 10.99.0.3: start it there with " \
               "`zpomelo masterha -i master-server-3`" in result.stderr
        table = {r["id"]: r for r in json.loads(run(base, "list", "--json").stdout)}
        assert table["master-server-2"]["state"] == "standby"
        assert "master-server-3" not in table
        result = run(base, "stop")
        assert result.returncode == 0, result.stderr
        # the standby leaves with the cluster: nothing of the project keeps running
        deadline = time.monotonic() + 20
        while project_pids(base) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not project_pids(base)
        result = run(base, "list")
        assert result.returncode != 0 and "the cluster is stopped" in result.stderr
    finally:
        kill_project(base)
