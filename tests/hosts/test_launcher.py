"""HostAccess: which servers go over ssh, the ssh command it builds, and the guarded kill."""
import subprocess
import sys

import pytest

from hosts.conftest import HOST_B
from zpomelo.config import MasterRecord
from zpomelo.master.launcher import HostAccess, remote_pid_from

pytestmark = pytest.mark.timeout(30)


def access(extra=None, host="10.0.0.1"):
    return HostAccess("/srv/game", "production", MasterRecord("m", host, 3005, extra or {}))


def test_local_hosts_are_the_masters_loopback_and_listed_ones():
    a = access({"localHosts": ["10.0.0.9"]})
    for host in ("10.0.0.1", "127.0.0.1", "localhost", "10.0.0.9", "LOCALHOST"):
        assert a.is_local({"id": "s", "host": host})
    assert not a.is_local({"id": "s", "host": "10.0.0.2"})
    assert not a.is_local({"id": "s", "host": "127.0.0.1", "sshHost": "10.0.0.2"})


def test_ssh_command_from_master_json_with_per_server_overrides():
    a = access({"ssh": {"user": "game", "port": 2222, "identity": "/k"}})
    assert a.ssh_argv({"id": "s", "host": "10.0.0.2"}) == [
        "ssh", "-o", "BatchMode=yes", "-p", "2222", "-i", "/k", "-l", "game", "10.0.0.2"]
    record = {"id": "s", "host": "10.0.0.2", "sshHost": "mgmt-2",
              "ssh": {"command": "ssh -F /etc/game.ssh", "port": 22, "options": []}}
    assert a.ssh_argv(record) == ["ssh", "-F", "/etc/game.ssh", "-p", "22", "-i", "/k", "-l",
                                  "game", "mgmt-2"]
    assert a.remote_dir({"id": "s"}) == "/srv/game"
    assert access({"remoteDir": "/opt/g"}).remote_dir({"id": "s", "remoteDir": "/x"}) == "/x"


def test_the_last_resort_kill_never_hits_a_process_that_is_not_the_server(tmp_path, sshd):
    a = HostAccess(tmp_path, "development", MasterRecord("m", "127.0.0.1", 0,
                                                         {"ssh": sshd.master_ssh_config()}))
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                                  "--id", "chat-1x"])
    try:
        for host in ("127.0.0.1", HOST_B):      # locally, and over ssh
            record = {"id": "chat-1", "host": host}
            assert a.signal_server(record, bystander.pid, "KILL") is False
            assert bystander.poll() is None
            assert a.signal_server(record, None, "KILL") is False
        assert a.signal_server({"id": "chat-1x", "host": HOST_B}, bystander.pid, "KILL")
        bystander.wait(5)       # it would sleep 60 s: it ended because it was killed
    finally:
        if bystander.poll() is None:
            bystander.kill()
            bystander.wait()


def test_remote_pid_is_read_from_the_ssh_log(tmp_path):
    log = tmp_path / "x.ssh.log"
    assert remote_pid_from(log) is None
    log.write_text("zpomelo-server-pid 41\nsome error\nzpomelo-server-pid 42\n")
    assert remote_pid_from(log) == 42


@pytest.mark.parametrize("master_extra, server_extra, message", [
    ({"ssh": {"prot": 22}}, {}, "unknown key 'prot'"),
    ({"ssh": {"port": "x"}}, {}, "'ssh.port'"),
    ({"ssh": {"options": "-v"}}, {}, "must be a list of strings"),
    ({"localHosts": "10.0.0.9"}, {}, "'localHosts'"),
    ({}, {"ssh": "ssh -v"}, "must be an object"),
    ({}, {"remoteDir": ""}, "'remoteDir': must be a non-empty string"),
    ({}, {"clientBind": 7}, "'clientBind'"),
])
def test_bad_host_fields_fail_at_load_naming_the_field(tmp_path, master_extra, server_extra,
                                                       message):
    import json

    from zpomelo.config import load_master, load_servers
    from zpomelo.errors import ConfigError
    conf = tmp_path / "config"
    conf.mkdir()
    master = {"id": "m", "host": "127.0.0.1", "port": 0, **master_extra}
    chat = {"id": "chat-1", "host": "127.0.0.1", "port": 0, **server_extra}
    (conf / "master.json").write_text(json.dumps({"development": master}))
    (conf / "servers.json").write_text(json.dumps({"development": {"chat": [chat]}}))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_master(tmp_path, "development")
        load_servers(tmp_path, "development")
