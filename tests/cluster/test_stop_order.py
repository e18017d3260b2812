"""Start and stop in an order that loses no request (real in-process cluster, real clients)."""
import os

import gevent
import pytest

from zpomelo.errors import RpcError
from zpomelo.testing import InProcessCluster, wait_until

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "apps", "drain")

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def cluster():
    with InProcessCluster(APP_DIR, "test") as c:
        yield c


def _ask(client, route, body):
    """Send a request now; its answer arrives in the returned AsyncResult."""
    result = gevent.event.AsyncResult()
    client.request_async(route, body, lambda error, answer: result.set((error, answer)))
    return result


def test_a_backend_stopping_finishes_the_request_using_a_component_and_refuses_new_calls(cluster):
    chat = cluster["chat-1"]
    ledger = chat.get("ledger")
    client = cluster.connect("connector-1")
    other = cluster.connect("connector-1")
    held = _ask(client, "chat.work.hold", {"name": "held"})
    wait_until(lambda: ledger.in_use == 1, 5, message="the request to use the component")

    stopping = gevent.spawn(chat.stop, 10.0)
    wait_until(lambda: chat.state == "stopping" and not chat.rpc_server.accepting, 5,
               message="chat-1 to start draining")

    # a client request forwarded to the stopping backend: answered with a clear error, not lost
    refused = other.request("chat.work.quick", {}, timeout=5)
    assert refused["code"] == 500
    assert "server chat-1 is stopping" in refused["error"] and "_sys.forward was not run" in refused["error"]
    # a remote call from another server: the same clear error, raised as an RpcError
    with pytest.raises(RpcError) as raised:
        cluster["connector-1"].rpc.chat.workRemote.ping.to_server("chat-1")
    assert raised.value.remote_type == "ServerStopping"
    assert "chat-1 is stopping" in str(raised.value)
    assert chat.rpc_server.stats["refused"] == 2
    assert not stopping.dead and ledger.log == ["start", "begin held"]   # still draining

    ledger.release.set()
    error, answer = held.get(timeout=10)
    assert error is None and answer == {"released": True, "server": "chat-1"}
    stopping.join(10)
    assert chat.state == "stopped"
    # the component was stopped only after the request that used it had finished
    assert ledger.log == ["start", "begin held", "end held", "stop (in use: 0)"]


def test_a_frontend_stopping_still_serves_the_session_calls_of_requests_in_flight(cluster):
    connector = cluster["connector-1"]
    ledger = cluster["chat-1"].get("ledger")
    client = cluster.connect("connector-1")
    held = _ask(client, "chat.work.hold", {"name": "binds", "bind": "alice"})
    wait_until(lambda: ledger.in_use == 1, 5, message="the request to reach the backend")

    stopping = gevent.spawn(connector.stop, 10.0)
    wait_until(lambda: connector.state == "stopping", 5, message="the frontend to start draining")
    ledger.release.set()   # the handler now calls session.bind on the stopping frontend
    error, answer = held.get(timeout=10)
    assert error is None and answer == {"released": True, "server": "chat-1"}
    stopping.join(10)
    assert connector.state == "stopped"
    assert connector.rpc_server.stats["refused"] == 0
    assert ledger.log[-1] == "end binds"


def test_clients_are_accepted_only_after_startup_finished(cluster):
    """The listener is bound before the components start but accepts only once started."""
    connector = cluster["connector-1"]
    assert connector.state == "started" and connector.connector._server.started
    assert cluster.connect("connector-1").request("connector.entry.whoami", {}) == {
        "uid": None, "server": "connector-1"}


def test_the_toobusy_lag_monitor_stops_with_the_app():
    from zpomelo import filters
    from zpomelo.application import Application
    from zpomelo.config import load_servers
    record = next(r for r in load_servers(APP_DIR, "test") if r.id == "chat-1")
    app = Application(APP_DIR, "test", record)
    busy = filters.toobusy(0.5)
    app.filter(busy)
    app.start()
    try:
        assert busy.monitor._greenlet is not None and not busy.monitor._greenlet.dead
        greenlet = busy.monitor._greenlet
    finally:
        app.stop(1.0)
    assert busy.monitor._greenlet is None and greenlet.dead


def test_a_failed_start_closes_what_it_had_bound():
    import dataclasses

    import zmq

    from zpomelo.application import Application
    from zpomelo.config import load_servers
    from zpomelo.rpc.zsock import bind
    taken = zmq.Context.instance().socket(zmq.ROUTER)
    taken.setsockopt(zmq.LINGER, 0)
    try:
        busy_port = bind(taken, "127.0.0.1", 0)
        record = next(r for r in load_servers(APP_DIR, "test") if r.id == "chat-1")
        record = dataclasses.replace(record, extra=dict(record.extra, busPort=busy_port))
        app = Application(APP_DIR, "test", record)
        with pytest.raises(OSError, match="bus cannot bind"):
            app.start()
        assert app.state == "stopped" and app.wait_stopped(0)
        # the RPC port it had bound before the bus failed is free again (ZeroMQ's I/O thread
        # releases a closed socket's port a moment later, hence the polling)
        rpc_port = app.rpc_server.port
        probes = []

        def rebinds():
            probe = zmq.Context.instance().socket(zmq.ROUTER)
            probe.setsockopt(zmq.LINGER, 0)
            probes.append(probe)
            try:
                return bind(probe, "127.0.0.1", rpc_port) == rpc_port
            except OSError:        # bind closed the probe
                return False
        try:
            wait_until(rebinds, 5, message="the rpc port to be released")
        finally:
            for probe in probes:
                probe.close()
        assert app.get("ledger").log == []   # no component was started
    finally:
        taken.close()


@pytest.mark.timeout(150)
def test_zpomelo_stop_of_a_backend_process_answers_its_request_and_refuses_new_ones(tmp_path):
    """The same with real processes: `zpomelo stop chat-1` while a forwarded request runs there."""
    import shutil
    import subprocess
    import sys

    from zpomelo.client import Client
    from zpomelo.testing import ProcessCluster

    project = tmp_path / "game"
    shutil.copytree(APP_DIR, project)
    started, release = tmp_path / "started", tmp_path / "release"
    with ProcessCluster(project, "test", password="test-secret") as cluster:
        servers = cluster.servers()
        port = servers["connector-1"]["clientPort"]
        client = Client.connect("127.0.0.1", port)
        other = Client.connect("127.0.0.1", port)
        try:
            held = _ask(client, "chat.work.hold_files", {"started": str(started), "release": str(release)})
            wait_until(started.exists, 20, message="the request to run on chat-1")
            stopper = subprocess.Popen(
                [sys.executable, "-m", "zpomelo.cli", "stop", "-e", "test", *cluster.auth, "chat-1"],
                cwd=str(project), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                def refused():
                    answer = other.request("chat.work.quick", {}, timeout=10)
                    return answer.get("code") == 500 and answer
                answer = wait_until(refused, 20, message="a request to chat-1 to be refused")
                assert "server chat-1 is stopping" in answer["error"], answer
                release.write_text("go")
                error, answer = held.get(timeout=20)
                assert error is None and answer == {"released": True, "server": "chat-1"}
                output, _ = stopper.communicate(timeout=60)
                assert stopper.returncode == 0, output
            finally:
                if stopper.poll() is None:
                    stopper.kill()
                    stopper.wait()
            pid = servers["chat-1"]["pid"]
            wait_until(lambda: not os.path.exists("/proc/%d" % pid), 15, message="chat-1 to exit")
            with open(project / "logs" / "chat-1.log", encoding="utf-8") as f:
                log = f.read()
            assert "chat-1 stopped" in log and "still running" not in log
        finally:
            client.close()
            other.close()
