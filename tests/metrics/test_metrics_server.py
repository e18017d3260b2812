"""One server's metrics with real sockets: kicks and handshakes, RPC timeouts and gone targets,
unknown routes, the endpoint's paths, the `metrics` setting, metricsPort checks, and a server
without prometheus_client (nothing breaks, and the log says why there are no metrics)."""
import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request

import gevent
import pytest
from prometheus_client.parser import text_string_to_metric_families

from zpomelo import reports
from zpomelo.config import load_servers
from zpomelo.errors import ConfigError
from zpomelo.metrics.stats import (BOUNDS, MAX_KEYS, OTHER, HandlerStats, Latency, ReasonCounter,
                                   RpcStats)
from zpomelo.testing.cluster import InProcessCluster

pytestmark = pytest.mark.timeout(60)

CONNECTOR = '''
def kickme(app, msg, session):
    session.kick(msg["reason"])


def slow(app, msg, session):
    return app.rpc.slow.slowRemote.wait(session.id, msg["seconds"], timeout=msg["timeout"])


def fine(app, msg, session):
    return {"code": 200}
'''
SLOW_REMOTE = '''
import gevent


def wait(app, seconds):
    gevent.sleep(seconds)
    return {"done": seconds}
'''


def make_project(root, connector_extra=None, app_py=None):
    (root / "config").mkdir(parents=True)
    connector = dict({"id": "connector-1", "host": "127.0.0.1", "port": 0, "clientPort": 0,
                      "frontend": True}, **(connector_extra or {}))
    (root / "config" / "servers.json").write_text(json.dumps({"test": {
        "connector": [connector], "slow": [{"id": "slow-1", "host": "127.0.0.1", "port": 0}]}}))
    for path, code in (("app/servers/connector/handler/entry.py", CONNECTOR),
                       ("app/servers/slow/remote/slowRemote.py", SLOW_REMOTE)):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(code)
    if app_py:
        (root / "app.py").write_text(app_py)
    return root


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as reply:
        return reply.read().decode()


def scrape(app, path="/metrics"):
    """GET from a native thread: the servers run in this process's gevent hub, which a plain
    blocking urlopen here would stop."""
    port = app.current_server.extra["metricsPort"]
    text = gevent.get_hub().threadpool.apply(_get, ("http://127.0.0.1:%d%s" % (port, path),))
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def test_kicks_handshakes_timeouts_and_unknown_routes(tmp_path):
    project = make_project(tmp_path / "game")
    with InProcessCluster(str(project), "test") as cluster:
        connector = cluster["connector-1"]
        for reason in ("banned", "banned", "idle"):
            client = cluster.connect("connector-1")
            client.notify("connector.entry.kickme", {"reason": reason})
            client.closed.wait(5)
            assert client.kicked_reason == reason
        client = cluster.connect("connector-1")
        reply = client.request("connector.entry.slow", {"seconds": 1.0, "timeout": 0.1})
        assert reply["code"] == 500 and "no reply within" in reply["error"]
        assert client.request("connector.entry.slow", {"seconds": 0, "timeout": 5}) == {"done": 0}
        for n in range(50):     # made-up routes: one row, however many
            assert client.request("connector.entry.nothing%d" % n, {})["code"] == 500
        cluster.remove("slow-1")      # no slow server left: the handler fails before any call
        reply = client.request("connector.entry.slow", {"seconds": 0, "timeout": 1})
        assert reply["code"] == 500

        samples = scrape(connector)
        assert value(samples, "zpomelo_kicks_total", reason="banned") == 2
        assert value(samples, "zpomelo_kicks_total", reason="idle") == 1
        assert value(samples, "zpomelo_handshakes_total", code="200") == 4
        assert value(samples, "zpomelo_clients_connected") == 1
        labels = {"target_type": "slow", "method": "slowRemote.wait"}
        assert value(samples, "zpomelo_rpc_client_timeouts_total", **labels) == 1
        assert value(samples, "zpomelo_rpc_client_seconds_count", **labels) == 1  # the late one not
        assert value(samples, "zpomelo_rpc_client_errors_total", **labels) == 0
        assert value(samples, "zpomelo_handler_seconds_count", route="<unknown>",
                     status="error") == 50
        assert not [key for key in samples if ("route", "connector.entry.nothing1") in key[1]]
        assert value(samples, "zpomelo_handler_seconds_count", route="connector.entry.slow",
                     status="error") == 2
        assert value(samples, "zpomelo_handler_seconds_count", route="connector.entry.slow",
                     status="ok") == 1
        assert value(samples, "zpomelo_membership_servers", server_type="connector") == 1
        assert value(samples, "zpomelo_membership_servers", server_type="slow") is None
        # the same numbers as plain data, for the admin console
        snapshot = connector.metrics.snapshot()
        assert snapshot["handlers"]["connector.entry.slow"]["error"]["count"] == 2
        assert [r["timeouts"] for r in snapshot["rpc"] if r["method"] == "slowRemote.wait"] == [1]
        # and the console's report reads the very same rows: each request counted once
        report = reports.report(connector, {"routes": True, "rpc": True})
        slow = [r for r in report["routes"] if r["route"] == "connector.entry.slow"]
        assert [(r["count"], r["errors"]) for r in slow] == [(3, 2)]
        calls = [r for r in report["rpc"] if r["method"] == "slowRemote.wait"]
        assert [(r["target"], r["targetType"], r["count"], r["errors"]) for r in calls] == [
            ("slow-1", "slow", 2, 1)]     # answered once, timed out once
        # only /metrics is served
        with pytest.raises(urllib.error.HTTPError) as refused:
            scrape(connector, "/")
        assert refused.value.code == 404


def test_the_metrics_setting_turns_them_off(tmp_path):
    project = make_project(tmp_path / "game", app_py=(
        "def configure(app):\n    app.set('metrics', False)\n"))
    with InProcessCluster(str(project), "test") as cluster:
        app = cluster["connector-1"]
        assert "metricsPort" not in app.current_server.extra
        assert app.metrics.endpoint is None and app.metrics.enabled is False
        assert cluster.connect("connector-1").request("connector.entry.fine", {}) == {"code": 200}
        # the counters are on anyway: the admin console reads the same ones
        assert app.stats.handlers.rows["connector.entry.fine"].ok.count == 1


def test_metrics_port_is_checked_in_servers_json(tmp_path):
    project = make_project(tmp_path / "bad", {"metricsPort": "abc"})
    with pytest.raises(ConfigError, match="metricsPort"):
        load_servers(str(project), "test")
    project = make_project(tmp_path / "clash", {"port": 4100, "metricsPort": 4100})
    with pytest.raises(ConfigError, match="already used"):
        load_servers(str(project), "test")


WITHOUT_LIBRARY = '''
import logging, sys
sys.modules["prometheus_client"] = None      # as if it were not installed: import fails
from gevent import monkey; monkey.patch_all()
logging.basicConfig(level=logging.WARNING)
from zpomelo.client import Client
from zpomelo.testing.cluster import InProcessCluster
with InProcessCluster(sys.argv[1], "test") as cluster:
    app = cluster["connector-1"]
    assert "metricsPort" not in app.current_server.extra, app.current_server.extra
    assert app.metrics.enabled is False and app.metrics.endpoint is None
    assert cluster.connect("connector-1").request("connector.entry.fine", {}) == {"code": 200}
    assert app.stats.handlers.rows["connector.entry.fine"].ok.count == 1   # counted anyway
    print("served without metrics")
'''


def test_without_prometheus_client_servers_run_and_say_why_there_are_no_metrics(tmp_path):
    project = make_project(tmp_path / "game", {"metricsPort": 0})
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(WITHOUT_LIBRARY), str(project)],
                         capture_output=True, text=True, timeout=50,
                         env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert run.returncode == 0, run.stderr
    assert "served without metrics" in run.stdout
    assert "prometheus_client is not installed" in run.stderr
    assert "pip install 'zpomelo[metrics]'" in run.stderr


def test_latency_buckets_follow_prometheus_le_and_merge():
    latency = Latency()
    for seconds in (BOUNDS[0], BOUNDS[0] * 1.5, 100.0):
        latency.observe(seconds)
    cumulative = dict(latency.cumulative())
    assert cumulative[repr(BOUNDS[0])] == 1          # equal to the bound: in that bucket
    assert cumulative[repr(BOUNDS[1])] == 2
    assert cumulative["+Inf"] == 3 == latency.count
    assert latency.min == BOUNDS[0] and latency.max == 100.0
    assert latency.quantile(0.5) == BOUNDS[1] and latency.quantile(0.99) == 100.0
    other = Latency()
    other.observe(0.0001)
    latency.merge(other)
    assert latency.count == 4 and latency.min == 0.0001 and latency.buckets[0] == 2


def test_unknown_routes_and_reasons_stay_bounded():
    stats = HandlerStats(lambda route: route == "a.b.c")
    for n in range(1000):
        stats.observe("a.b.x%d" % n, True, 0.001)
    stats.observe("a.b.c", False, 0.001)
    assert sorted((r, s, l.count) for r, s, l in stats.items()) == [
        ("<unknown>", "error", 1000), ("a.b.c", "ok", 1)]
    rpc = RpcStats(lambda server_id: "chat")
    for n in range(MAX_KEYS + 10):
        rpc.reply("chat-%d" % n, "chatRemote", "add", 0.001, True)
    assert len(rpc.rows) == MAX_KEYS + 1 and rpc.rows[(OTHER, "", OTHER)].latency.count == 10
    assert rpc.by_type()[("chat", "chatRemote.add")].latency.count == MAX_KEYS
    reasons = ReasonCounter(limit=3)
    for n in range(10):
        reasons.add("reason %d" % n)
    assert len(reasons.counts) == 4 and reasons.counts[OTHER] == 7
