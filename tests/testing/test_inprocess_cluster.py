"""InProcessCluster binds every port to 0 whatever servers.json says, and a failed start leaves
no socket, file descriptor or greenlet behind."""
import gc
import json
import os

import gevent
import pytest
import zmq

from zpomelo.testing import InProcessCluster, wait_until

pytestmark = pytest.mark.timeout(60)

BROKEN_LIFECYCLE = '''
def before_startup(app):
    raise RuntimeError("broken-1 refuses to start")
'''


def write_project(base, servers, lifecycles=None):
    (base / "config").mkdir(parents=True)
    (base / "config" / "servers.json").write_text(json.dumps({"test": servers}))
    for server_type, source in (lifecycles or {}).items():
        directory = base / "app" / "servers" / server_type
        directory.mkdir(parents=True)
        (directory / "lifecycle.py").write_text(source)
    return str(base)


def open_fds():
    return set(os.listdir("/proc/self/fd"))


def live_greenlets():
    return [g for g in gc.get_objects() if isinstance(g, gevent.Greenlet) and not g.dead]


def open_zmq_sockets():
    return [s for s in gc.get_objects() if isinstance(s, zmq.Socket) and not s.closed]


def test_fixed_ports_in_servers_json_are_bound_to_free_ports(tmp_path, held_ports):
    rpc, client, bus, _ = held_ports
    project = write_project(tmp_path, {"connector": [
        {"id": "connector-1", "host": "127.0.0.1", "port": rpc, "clientPort": client,
         "busPort": bus, "frontend": True}]})
    with InProcessCluster(project) as cluster:
        bound = cluster["connector-1"].current_server
        assert bound.port not in held_ports and bound.port > 0
        assert bound.client_port not in held_ports and bound.client_port > 0
        assert bound.extra["busPort"] not in held_ports and bound.extra["busPort"] > 0
        reply = cluster.connect().request("connector.nothing.here", {})
        assert reply["code"] == 500 and "no handler" in reply["error"]


def test_a_server_failing_in_before_startup_leaves_nothing_behind(tmp_path):
    project = write_project(tmp_path, {
        "connector": [{"id": "connector-1", "host": "127.0.0.1", "port": 0, "clientPort": 0,
                       "frontend": True}],
        "broken": [{"id": "broken-1", "host": "127.0.0.1", "port": 0}],
    }, lifecycles={"broken": BROKEN_LIFECYCLE})
    # A first good start and stop creates what lives for the whole process (zmq's context and
    # its threads' descriptors), so the counts below compare like with like.
    with InProcessCluster(project, only=["connector-1"]):
        pass
    gc.collect()
    fds, greenlets, zmq_sockets = open_fds(), len(live_greenlets()), len(open_zmq_sockets())

    cluster = InProcessCluster(project)
    with pytest.raises(RuntimeError, match="broken-1 refuses to start"):
        cluster.start()

    assert cluster.apps == {}
    wait_until(lambda: open_fds() <= fds, timeout=10, message="the failed start's descriptors to close")
    wait_until(lambda: len(live_greenlets()) <= greenlets, timeout=10,
               message="the failed start's greenlets to end")
    gc.collect()
    assert len(open_zmq_sockets()) <= zmq_sockets


def test_a_failed_add_leaves_the_running_cluster_as_it_was(tmp_path):
    project = write_project(tmp_path, {
        "connector": [{"id": "connector-1", "host": "127.0.0.1", "port": 0, "clientPort": 0,
                       "frontend": True}],
        "broken": [{"id": "broken-1", "host": "127.0.0.1", "port": 0}],
    }, lifecycles={"broken": BROKEN_LIFECYCLE})
    with InProcessCluster(project, only=["connector-1"]) as cluster:
        broken = [r for r in InProcessCluster(project).records if r.id == "broken-1"][0]
        with pytest.raises(RuntimeError, match="refuses to start"):
            cluster.add(broken)
        assert list(cluster.apps) == ["connector-1"]
        assert cluster["connector-1"].get_server("broken-1") is None
        reply = cluster.connect().request("connector.nothing.here", {})
        assert reply["code"] == 500
