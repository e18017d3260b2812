"""`zpomelo keys`, `zpomelo init`'s keys, and the real command line with the wrong keys: refused,
with a message that says what to do, and the running cluster unchanged."""
import shutil

import pytest

from zpomelo.rpc import security

from .cli_project import kill_project, list_rows, ok, zpomelo
from .conftest import FAKE_COMMAND, server, write_project

pytestmark = pytest.mark.timeout(120)


def test_keys_command_writes_private_files_and_refuses_to_overwrite(tmp_path):
    (tmp_path / "config").mkdir()
    out = ok(tmp_path, "keys", "--no-curve")
    assert "config/keys/cluster.secret" in out and "server.key" not in out
    keys = security.load_keys(tmp_path)
    assert keys.secret and not keys.curve
    refused = zpomelo(tmp_path, "keys")
    assert refused.returncode == 1 and "--force" in refused.stderr
    ok(tmp_path, "keys", "--force")
    again = security.load_keys(tmp_path)
    assert again.curve and again.secret != keys.secret
    for name in ("cluster.secret", "server.key_secret", "client.key_secret"):
        assert (tmp_path / "config" / "keys" / name).stat().st_mode & 0o777 == 0o600
    outside = zpomelo(tmp_path / "config", "keys")
    assert outside.returncode == 1 and "no config/ directory" in outside.stderr


def test_init_makes_keys(tmp_path):
    ok(tmp_path, "init", tmp_path / "game")
    keys = security.load_keys(tmp_path / "game")
    assert keys.secret and keys.curve
    assert "config/keys/" in (tmp_path / "game" / ".gitignore").read_text().split()


@pytest.fixture(params=[False, True], ids=["secret", "curve"])
def running(request, tmp_path, monkeypatch):
    monkeypatch.setenv("ZPOMELO_SERVER_COMMAND", FAKE_COMMAND)
    base = tmp_path / "game"
    write_project(base, {"connector": [server("connector-1", "connector", frontend=True)],
                         "chat": [server("chat-1", "chat")]}, curve=request.param)
    ok(base, "start", "-D")
    yield base
    kill_project(base)


def test_cli_with_foreign_keys_is_refused_and_changes_nothing(running, tmp_path):
    before = list_rows(running, "-p", "s3cret")
    port = before["master-server-1"]["port"]
    impostor = tmp_path / "impostor"
    shutil.copytree(running / "config", impostor / "config")
    curve = security.load_keys(running).curve
    ok(impostor, "keys", "--force", *([] if curve else ["--no-curve"]))
    for verb in (["stop"], ["kill", "chat-1"], ["list"]):
        result = zpomelo(impostor, *verb, "-P", port, "-p", "s3cret", timeout=30)
        assert result.returncode == 1
        if curve:
            assert "refused the CURVE handshake" in result.stderr, result.stderr
        else:
            assert "refused the request: unauthenticated" in result.stderr, result.stderr
    missing = tmp_path / "nokeys"
    shutil.copytree(running / "config", missing / "config")
    shutil.rmtree(missing / "config" / "keys")
    result = zpomelo(missing, "list", "-P", port, "-p", "s3cret")
    assert result.returncode == 1 and "cluster.secret is missing" in result.stderr
    after = list_rows(running, "-p", "s3cret")
    assert {k: (v["pid"], v["state"]) for k, v in after.items()} == \
        {k: (v["pid"], v["state"]) for k, v in before.items()}
    log = (running / "logs" / "master.log").read_text()
    if curve:   # its own server key too: the handshake fails before ZAP is asked
        assert "refused a connection without the cluster's CURVE key" in log
    else:
        assert "refused an unauthenticated 'admin' from 127.0.0.1" in log
    ok(running, "stop", "-p", "s3cret")


def test_first_start_on_one_host_makes_the_secret_production_refuses(tmp_path, monkeypatch):
    """A project cloned from git has no config/keys/: development on loopback starts anyway, with
    a secret made for it; production, or servers on another host, still need `zpomelo keys`."""
    monkeypatch.setenv("ZPOMELO_SERVER_COMMAND", FAKE_COMMAND)
    base = tmp_path / "game"
    for env in ("development", "production"):
        write_project(base / env, {"chat": [server("chat-1", "chat")]}, env=env)
        shutil.rmtree(base / env / "config" / "keys")
    refused = zpomelo(base / "production", "start", "-D", "-e", "production")
    assert refused.returncode == 1 and "cluster.secret is missing" in refused.stderr
    assert not (base / "production" / "config" / "keys").exists()
    remote = base / "remote"
    write_project(remote, {"chat": [server("chat-1", "chat", host="10.9.8.7")]})
    shutil.rmtree(remote / "config" / "keys")
    assert "cluster.secret is missing" in zpomelo(remote, "start", "-D").stderr
    dev = base / "development"
    try:
        started = zpomelo(dev, "start", "-D")
        assert started.returncode == 0, started.stderr
        assert "made a cluster secret" in started.stderr
        secret = dev / "config" / "keys" / security.SECRET_FILE
        assert secret.stat().st_mode & 0o777 == 0o600
        assert list_rows(dev, "-p", "s3cret")["chat-1"]["state"] == "running"
    finally:
        kill_project(dev)
