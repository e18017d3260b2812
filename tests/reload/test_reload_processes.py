"""`zpomelo reload` on a real cluster (`zpomelo start` under the master, real TCP clients).

Under load: clients keep sending while the handler file changes and `zpomelo reload` runs; every
answer succeeds, no connection drops, each server's answers switch from the old version to the
new one once, and a request that was running during the swap finishes on the old code. A syntax
error is reported by the command (file, line, message; exit code 1) and the old code keeps
serving. -t and -i reload only the servers they name.
"""
import json
import os

import gevent
import pytest

from zpomelo.client import Client
from zpomelo.testing import rounds, wait_until
from zpomelo.testing.process_cluster import ProcessCluster

pytestmark = pytest.mark.timeout(180)

HANDLER = '''
import os
import gevent

VERSION = {version}


def version(app, msg, session):
    return {{"v": VERSION, "server": app.server_id}}


def slow(app, msg, session):
    """Runs across a reload (until the test writes "release"): answers with the version of the
    code it started on."""
    open(os.path.join(app.base_dir, "slow-started"), "w").close()
    for _ in range(3000):           # at most 30 s
        if os.path.exists(os.path.join(app.base_dir, "release")):
            break
        gevent.sleep(0.01)
    return {{"v": VERSION, "server": app.server_id}}
'''

APP_PY = '''
def configure(app):
    # the client names the server, so the test can ask each one
    app.route("echo", lambda session, msg, app: msg["target"])
'''


def _write_handler(project, server_type, version):
    path = project / "app" / "servers" / server_type / "handler" / ("%sHandler.py" % server_type)
    path.write_text(HANDLER.format(version=version))
    return path


@pytest.fixture
def project(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "servers.json").write_text(json.dumps({"test": {
        "connector": [{"id": "connector-1", "host": "127.0.0.1", "port": 0,
                       "clientHost": "127.0.0.1", "clientPort": 0, "frontend": True}],
        "echo": [{"id": "echo-1", "host": "127.0.0.1", "port": 0},
                 {"id": "echo-2", "host": "127.0.0.1", "port": 0}],
        "other": [{"id": "other-1", "host": "127.0.0.1", "port": 0}]}}))
    (config / "master.json").write_text(json.dumps({"test": {"id": "master", "host": "127.0.0.1",
                                                             "port": 0}}))
    (config / "adminUser.json").write_text(json.dumps(
        [{"id": "user-1", "username": "admin", "password": "reload-test", "level": 1}]))
    (tmp_path / "app.py").write_text(APP_PY)
    for server_type in ("connector", "echo", "other"):
        (tmp_path / "app" / "servers" / server_type / "handler").mkdir(parents=True)
    for server_type in ("echo", "other"):
        _write_handler(tmp_path, server_type, 1)
    return tmp_path


@pytest.fixture
def cluster(project):
    with ProcessCluster(project, "test") as running:
        yield running


def _client(cluster):
    port = cluster.servers()["connector-1"]["clientPort"]
    return Client.connect("127.0.0.1", port, timeout=10)


def _versions(client):
    return {target: client.request("echo.echoHandler.version", {"target": target})["v"]
            for target in ("echo-1", "echo-2")} | \
        {"other-1": client.request("other.otherHandler.version", {})["v"]}


def _reload(cluster, *args, check=True):
    return cluster.zpomelo("reload", "-e", "test", *cluster.auth, *args, check=check)


class Load:
    """Clients that keep asking both echo servers for their version until stopped."""

    def __init__(self, clients):
        self.answers = {i: [] for i in range(len(clients))}    # client -> [(server, answer)]
        self.failures = []
        self._stop = False
        self._greenlets = [gevent.spawn(self._run, i, c) for i, c in enumerate(clients)]

    def _run(self, i, client):
        for n in rounds(lambda: self._stop, seconds=180):     # the tests' timeout
            target = ("echo-1", "echo-2")[(n - 1) % 2]
            try:
                self.answers[i].append((target, client.request("echo.echoHandler.version",
                                                               {"target": target})))
            except Exception as e:      # a timeout, a closed connection: all are failures
                self.failures.append("client %d: %s: %s" % (i, type(e).__name__, e))
                return

    def count(self, version):
        return min(sum(1 for _, a in answers if a.get("v") == version)
                   for answers in self.answers.values())

    def stop(self):
        self._stop = True
        gevent.joinall(self._greenlets, timeout=20)


def test_reload_under_load_switches_answers_without_a_failed_request(cluster, project):
    clients = [_client(cluster) for _ in range(4)]
    watcher = _client(cluster)
    try:
        load = Load(clients)
        wait_until(lambda: load.count(1) >= 20 or load.failures, 20, message="old answers")
        slow = gevent.spawn(watcher.request, "echo.echoHandler.slow",
                            {"target": "echo-1"}, timeout=40)
        wait_until(lambda: (project / "slow-started").exists(), 10, message="slow request running")
        _write_handler(project, "echo", 2)
        run = _reload(cluster, "-t", "echo")
        assert "reloaded echo-1" in run.stdout and "reloaded echo-2" in run.stdout, run.stdout
        rows = cluster.servers()
        assert rows["echo-1"]["gcFrozen"] > 1000 and rows["echo-2"]["gcFrozen"] > 1000, rows
        assert not slow.ready(), "the slow request should still be running during the reload"
        (project / "release").touch()
        served = {a["server"] for _, a in load.answers[0]}
        wait_until(lambda: load.count(2) >= 20 or load.failures, 30, message="new answers")
        load.stop()
        assert load.failures == []
        assert slow.get(timeout=40) == {"v": 1, "server": "echo-1"}   # finished on the old code
        total = 0
        for i, answers in load.answers.items():
            for target in ("echo-1", "echo-2"):
                seen = [a["v"] for t, a in answers if t == target]
                assert all(a.get("server") == t for t, a in answers)
                # one switch per server and client: old answers, then only new ones
                assert seen == sorted(seen) and set(seen) == {1, 2}, (i, target, seen)
            total += len(answers)
        assert served == {"echo-1", "echo-2"}
        assert not any(c.closed.is_set() for c in clients), [c.close_reason for c in clients]
        assert _versions(clients[0]) == {"echo-1": 2, "echo-2": 2, "other-1": 1}
        print("reload under load: %d answers, %d clients, all succeeded" % (total, len(clients)))
        assert total >= 160
    finally:
        for c in clients + [watcher]:
            c.close()


def test_a_syntax_error_is_reported_and_the_old_code_keeps_serving(cluster, project):
    client = _client(cluster)
    try:
        path = _write_handler(project, "echo", 2)
        path.write_text(path.read_text() + "\n\ndef broken(app, msg, session)\n    return {}\n")
        line = path.read_text().splitlines().index("def broken(app, msg, session)") + 1
        run = _reload(cluster, "-t", "echo", check=False)
        assert run.returncode == 1, (run.stdout, run.stderr)
        for server in ("echo-1", "echo-2"):
            said = [s for s in run.stderr.splitlines() if s.startswith("error: " + server)]
            assert said, run.stderr
            assert "%s:%d: SyntaxError: " % (path, line) in said[0], said
            assert "the old code keeps serving" in said[0]
        assert _versions(client) == {"echo-1": 1, "echo-2": 1, "other-1": 1}
        log = (project / "logs" / "echo-1.log").read_text()
        assert "reload failed, the old code keeps serving: %s:%d" % (path, line) in log

        as_json = json.loads(_reload(cluster, "-i", "echo-2", "--json", check=False).stdout)
        assert as_json[0]["ok"] is False and as_json[0]["error"]["line"] == line

        _write_handler(project, "echo", 3)       # fixed: the next reload takes it
        _reload(cluster, "-t", "echo")
        assert _versions(client) == {"echo-1": 3, "echo-2": 3, "other-1": 1}
    finally:
        client.close()


def test_type_and_id_reload_only_the_servers_they_name(cluster, project):
    client = _client(cluster)
    try:
        _write_handler(project, "echo", 2)
        _write_handler(project, "other", 2)
        run = _reload(cluster, "-i", "echo-2")
        assert run.stdout.startswith("reloaded echo-2") and "echo-1" not in run.stdout
        assert _versions(client) == {"echo-1": 1, "echo-2": 2, "other-1": 1}

        run = _reload(cluster, "-t", "other")
        assert "reloaded other-1" in run.stdout and "echo" not in run.stdout
        assert _versions(client) == {"echo-1": 1, "echo-2": 2, "other-1": 2}

        _write_handler(project, "echo", 4)
        run = _reload(cluster)                   # everything: the connector too
        assert {l.split(":")[0] for l in run.stdout.splitlines()} == {
            "reloaded connector-1", "reloaded echo-1", "reloaded echo-2", "reloaded other-1"}
        assert _versions(client) == {"echo-1": 4, "echo-2": 4, "other-1": 2}

        bad = _reload(cluster, "-t", "nosuchtype", check=False)
        assert bad.returncode == 1 and "no server of type 'nosuchtype'" in bad.stderr
        bad = _reload(cluster, "-i", "echo-9", check=False)
        assert bad.returncode == 1 and "no server with id 'echo-9'" in bad.stderr
    finally:
        client.close()
