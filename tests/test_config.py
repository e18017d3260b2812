"""zpomelo.config: loading, clusterCount expansion, and every validation error's message."""

import json
from pathlib import Path

import pytest

from zpomelo.config import (
    MasterRecord,
    ServerRecord,
    expand_cluster,
    find_config_file,
    load_admin_users,
    load_json_config,
    load_master,
    load_servers,
    parse_server_args,
)
from zpomelo.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
ENV = "development"


def write(base, name, data, env_dir=None):
    """Write config/<name> (or config/<env_dir>/<name>); data is JSON-encoded unless a str."""
    folder = base / "config" / env_dir if env_dir else base / "config"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path


def servers(base, by_type, env=ENV):
    return write(base, "servers.json", {env: by_type})


def config_error(fn, *args):
    with pytest.raises(ConfigError) as info:
        fn(*args)
    return str(info.value)


def assert_names(message, *parts):
    for part in parts:
        assert part in message, "%r not in %r" % (part, message)


CHAT = {"id": "chat-server-1", "host": "127.0.0.1", "port": 6050}
CONNECTOR = {"id": "connector-server-1", "host": "127.0.0.1", "port": 4050,
             "clientPort": 3050, "frontend": True}


# --------------------------------------------------------------------------- shipped defaults

@pytest.mark.parametrize("env", ["development", "production"])
def test_shipped_config_loads(env):
    records = load_servers(REPO, env)
    types = {r.server_type for r in records}
    assert types == {"gate", "connector", "chat"}
    assert all(r.frontend and r.client_port for r in records if r.server_type != "chat")
    master = load_master(REPO, env)
    assert (master.host, master.port) == ("127.0.0.1", 3005)


def test_shipped_admin_user_and_dictionary():
    users = load_admin_users(REPO, ENV)
    assert [(u["username"], u["password"], u["level"]) for u in users] == [("admin", "admin", 1)]
    assert load_json_config(REPO, ENV, "dictionary.json") == []


def test_shipped_production_expands_clusters():
    ids = [r.id for r in load_servers(REPO, "production")]
    assert ids[:3] == ["gate-server-1", "connector-server-1", "connector-server-2"]
    assert len(ids) == len(set(ids))


# --------------------------------------------------------------------------- loading

def test_servers_keep_file_order_and_fields(tmp_path):
    servers(tmp_path, {
        "connector": [dict(CONNECTOR, clientHost="example.org", args="--a  --b=1", cpu=2,
                           **{"auto-restart": True, "restart-force": "true",
                              "max-connections": 100, "weight": 3})],
        "chat": [CHAT, dict(CHAT, id="chat-server-2", port=6051, args=["-x", "y"])],
    })
    records = load_servers(tmp_path, ENV)
    assert [r.id for r in records] == ["connector-server-1", "chat-server-1", "chat-server-2"]
    c = records[0]
    assert (c.server_type, c.host, c.port, c.client_host, c.client_port, c.frontend) == \
        ("connector", "127.0.0.1", 4050, "example.org", 3050, True)
    assert c.args == ("--a", "--b=1")
    assert (c.cpu, c.auto_restart, c.restart_force, c.max_connections) == (2, True, True, 100)
    assert dict(c.extra) == {"weight": 3}
    assert records[2].args == ("-x", "y")
    assert records[1].frontend is False and records[1].client_port is None


def test_record_is_frozen_and_extra_read_only(tmp_path):
    record = ServerRecord.from_dict(dict(CHAT, weight=1), "chat")
    with pytest.raises(AttributeError):
        record.port = 1
    with pytest.raises(TypeError):
        record.extra["weight"] = 2
    assert hash(record) == hash(ServerRecord.from_dict(dict(CHAT, weight=1), "chat"))


def test_to_dict_uses_pomelo_keys_and_round_trips():
    record = ServerRecord.from_dict(dict(CONNECTOR, args="a b", zone="eu",
                                         **{"max-connections": 5}), "connector")
    d = record.to_dict()
    assert d["serverType"] == "connector" and d["clientPort"] == 3050
    assert d["max-connections"] == 5 and d["auto-restart"] is False and d["zone"] == "eu"
    assert d["args"] == ["a", "b"]
    assert ServerRecord.from_dict(d) == record


def test_port_zero_allowed_and_not_a_collision(tmp_path):
    servers(tmp_path, {"chat": [dict(CHAT, port=0), dict(CHAT, id="chat-server-2", port=0)],
                       "connector": [dict(CONNECTOR, port=0, clientPort=0)]})
    assert [r.port for r in load_servers(tmp_path, ENV)] == [0, 0, 0]


def test_backend_with_client_port_is_allowed(tmp_path):
    servers(tmp_path, {"chat": [dict(CHAT, clientPort=3999)]})
    assert load_servers(tmp_path, ENV)[0].client_port == 3999


def test_env_dir_unkeyed_layout_wins(tmp_path):
    servers(tmp_path, {"chat": [CHAT]})
    write(tmp_path, "servers.json", {"chat": [dict(CHAT, id="local-chat")]}, env_dir=ENV)
    write(tmp_path, "master.json", {"id": "m", "host": "10.0.0.1", "port": 3005}, env_dir=ENV)
    assert find_config_file(tmp_path, ENV, "servers.json") == \
        tmp_path / "config" / ENV / "servers.json"
    assert [r.id for r in load_servers(tmp_path, ENV)] == ["local-chat"]
    assert load_master(tmp_path, ENV) == MasterRecord("m", "10.0.0.1", 3005, {})


def test_env_dir_file_may_still_be_keyed(tmp_path):
    write(tmp_path, "servers.json", {ENV: {"chat": [CHAT]}}, env_dir=ENV)
    assert [r.id for r in load_servers(tmp_path, ENV)] == ["chat-server-1"]


def test_find_config_file_falls_back_to_config_dir(tmp_path):
    assert find_config_file(tmp_path, "production", "master.json") == \
        tmp_path / "config" / "master.json"


def test_master_keyed_with_extra(tmp_path):
    write(tmp_path, "master.json", {ENV: {"id": "master-1", "host": "127.0.0.1", "port": 3005,
                                          "ha": False}})
    master = load_master(tmp_path, ENV)
    assert (master.id, master.host, master.port, dict(master.extra)) == \
        ("master-1", "127.0.0.1", 3005, {"ha": False})


# --------------------------------------------------------------------------- clusterCount

def test_cluster_count_with_id_and_incremented_ports(tmp_path):
    servers(tmp_path, {"connector": [{"id": "conn", "host": "127.0.0.1", "port": "4050++",
                                      "clientPort": "3050++", "frontend": True,
                                      "clusterCount": 3, "args": "-v"}]})
    records = load_servers(tmp_path, ENV)
    assert [(r.id, r.port, r.client_port) for r in records] == \
        [("conn-1", 4050, 3050), ("conn-2", 4051, 3051), ("conn-3", 4052, 3052)]
    assert all(r.args == ("-v",) and not r.extra for r in records)


def test_cluster_count_without_id_continues_per_type(tmp_path):
    servers(tmp_path, {"chat": [
        {"host": "127.0.0.1", "port": "6050++", "clusterCount": 2},
        {"host": "127.0.0.2", "port": 0, "clusterCount": 2},
    ]})
    assert [(r.id, r.host, r.port) for r in load_servers(tmp_path, ENV)] == [
        ("chat-1", "127.0.0.1", 6050), ("chat-2", "127.0.0.1", 6051),
        ("chat-3", "127.0.0.2", 0), ("chat-4", "127.0.0.2", 0)]


def test_plus_plus_without_cluster_count_is_just_the_number():
    [record] = expand_cluster(dict(CHAT, port="6050++"), "chat")
    assert record.port == 6050


def test_cluster_count_fixed_port_collides(tmp_path):
    path = servers(tmp_path, {"chat": [dict(CHAT, clusterCount=2)]})
    msg = config_error(load_servers, tmp_path, ENV)
    assert_names(msg, str(path), "chat-server-1-2", "'port'", "127.0.0.1:6050",
                 "chat-server-1-1")


@pytest.mark.parametrize("count", [0, "two", -1, True])
def test_cluster_count_must_be_positive_int(tmp_path, count):
    path = servers(tmp_path, {"chat": [dict(CHAT, port="6050++", clusterCount=count)]})
    msg = config_error(load_servers, tmp_path, ENV)
    assert_names(msg, str(path), "chat-server-1", "'clusterCount'")


def test_plus_plus_needs_an_integer(tmp_path):
    path = servers(tmp_path, {"chat": [dict(CHAT, port="abc++", clusterCount=2)]})
    assert_names(config_error(load_servers, tmp_path, ENV),
                 str(path), "chat-server-1", "'port'", "abc++")


# --------------------------------------------------------------------------- file errors

def test_missing_file_names_both_places(tmp_path):
    msg = config_error(load_servers, tmp_path, ENV)
    assert_names(msg, str(tmp_path / "config" / "servers.json"),
                 str(tmp_path / "config" / ENV / "servers.json"), "not found")
    assert_names(config_error(load_master, tmp_path, ENV), "master.json", "not found")


def test_bad_json_gives_line_and_column(tmp_path):
    path = write(tmp_path, "servers.json", '{\n  "development": {\n    "chat": [,]\n')
    msg = config_error(load_servers, tmp_path, ENV)
    assert_names(msg, str(path), "line 3 column 14", "JSON")
    write(tmp_path, "dictionary.json", "[\"onChat\",")
    assert_names(config_error(load_json_config, tmp_path, ENV, "dictionary.json"),
                 "dictionary.json", "line 1")


def test_missing_environment_lists_present_ones(tmp_path):
    path = write(tmp_path, "servers.json", {"production": {}, "staging": {}})
    msg = config_error(load_servers, tmp_path, ENV)
    assert_names(msg, str(path), "'development'", "production, staging",
                 str(tmp_path / "config" / ENV / "servers.json"))
    write(tmp_path, "master.json", {"production": {"host": "h", "port": 1}})
    assert_names(config_error(load_master, tmp_path, ENV), "master.json", "'development'",
                 "production")


def test_servers_section_must_be_object_and_types_lists(tmp_path):
    path = write(tmp_path, "servers.json", {ENV: ["chat"]})
    assert_names(config_error(load_servers, tmp_path, ENV), str(path), "serverType")
    servers(tmp_path, {"chat": CHAT})
    assert_names(config_error(load_servers, tmp_path, ENV), str(path), "'chat'",
                 "field 'serverType'", "must be a list")
    servers(tmp_path, {"chat": ["chat-server-1"]})
    assert_names(config_error(load_servers, tmp_path, ENV), str(path), "#0 of type chat",
                 "JSON object")


# --------------------------------------------------------------------------- server errors

def test_duplicate_id_names_both_places(tmp_path):
    path = servers(tmp_path, {"chat": [CHAT], "area": [dict(CHAT, port=6060)]})
    msg = config_error(load_servers, tmp_path, ENV)
    assert_names(msg, str(path), "server 'chat-server-1'", "field 'id'", "chat[0]", "area[0]")


@pytest.mark.parametrize("port", ["abc", 3.5, True, 70000, -1, [1]])
def test_bad_port(tmp_path, port):
    path = servers(tmp_path, {"chat": [dict(CHAT, port=port)]})
    msg = config_error(load_servers, tmp_path, ENV)
    assert_names(msg, str(path), "server 'chat-server-1'", "field 'port'", "0 and 65535")


def test_missing_port(tmp_path):
    entry = dict(CHAT)
    del entry["port"]
    path = servers(tmp_path, {"chat": [entry]})
    assert_names(config_error(load_servers, tmp_path, ENV),
                 str(path), "server 'chat-server-1'", "field 'port'", "missing")


def test_missing_id_names_index_and_type(tmp_path):
    path = servers(tmp_path, {"chat": [CHAT, {"host": "127.0.0.1", "port": 1}]})
    assert_names(config_error(load_servers, tmp_path, ENV),
                 str(path), "server '#1 of type chat'", "field 'id'", "missing")


def test_missing_host(tmp_path):
    path = servers(tmp_path, {"chat": [{"id": "c1", "port": 1}]})
    assert_names(config_error(load_servers, tmp_path, ENV),
                 str(path), "server 'c1'", "field 'host'", "missing")


def test_frontend_without_client_port(tmp_path):
    entry = dict(CONNECTOR)
    del entry["clientPort"]
    path = servers(tmp_path, {"connector": [entry]})
    assert_names(config_error(load_servers, tmp_path, ENV),
                 str(path), "server 'connector-server-1'", "field 'clientPort'", "frontend")


@pytest.mark.parametrize("client_port", ["x", 65536, -5])
def test_bad_client_port(tmp_path, client_port):
    path = servers(tmp_path, {"connector": [dict(CONNECTOR, clientPort=client_port)]})
    assert_names(config_error(load_servers, tmp_path, ENV),
                 str(path), "server 'connector-server-1'", "field 'clientPort'")


def test_frontend_must_be_boolean(tmp_path):
    path = servers(tmp_path, {"connector": [dict(CONNECTOR, frontend="yes")]})
    assert_names(config_error(load_servers, tmp_path, ENV),
                 str(path), "server 'connector-server-1'", "field 'frontend'", "true or false")


@pytest.mark.parametrize("server_type", ["chat.room", "1chat", "chat room", ""])
def test_server_type_must_be_identifier(tmp_path, server_type):
    path = servers(tmp_path, {server_type: [CHAT]})
    assert_names(config_error(load_servers, tmp_path, ENV),
                 str(path), "server 'chat-server-1'", "field 'serverType'", "identifier")


def test_server_type_mismatch(tmp_path):
    path = servers(tmp_path, {"chat": [dict(CHAT, serverType="area")]})
    assert_names(config_error(load_servers, tmp_path, ENV),
                 str(path), "server 'chat-server-1'", "field 'serverType'", "'area'")


def test_from_dict_without_type_needs_server_type():
    msg = config_error(ServerRecord.from_dict, CHAT, None, "x.json")
    assert_names(msg, "x.json", "chat-server-1", "field 'serverType'", "missing")


def test_same_host_and_port(tmp_path):
    path = servers(tmp_path, {"chat": [CHAT], "area": [dict(CHAT, id="area-1")]})
    assert_names(config_error(load_servers, tmp_path, ENV),
                 str(path), "server 'area-1'", "field 'port'", "127.0.0.1:6050",
                 "'chat-server-1'")


def test_client_port_collides_with_another_port(tmp_path):
    path = servers(tmp_path, {"chat": [CHAT],
                              "connector": [dict(CONNECTOR, clientPort=6050)]})
    assert_names(config_error(load_servers, tmp_path, ENV),
                 str(path), "server 'connector-server-1'", "field 'clientPort'", "6050")


@pytest.mark.parametrize("cpu", ["two", 1.5, False])
def test_cpu_must_be_int(tmp_path, cpu):
    path = servers(tmp_path, {"chat": [dict(CHAT, cpu=cpu)]})
    assert_names(config_error(load_servers, tmp_path, ENV),
                 str(path), "server 'chat-server-1'", "field 'cpu'", "integer")


@pytest.mark.parametrize("args", [3, ["a", 1], {"a": 1}])
def test_bad_args(tmp_path, args):
    path = servers(tmp_path, {"chat": [dict(CHAT, args=args)]})
    assert_names(config_error(load_servers, tmp_path, ENV),
                 str(path), "server 'chat-server-1'", "field 'args'")


def test_bad_max_connections(tmp_path):
    path = servers(tmp_path, {"chat": [dict(CHAT, **{"max-connections": 0})]})
    assert_names(config_error(load_servers, tmp_path, ENV),
                 str(path), "server 'chat-server-1'", "field 'max-connections'")


def test_master_errors(tmp_path):
    path = write(tmp_path, "master.json", {ENV: {"id": "m1", "host": "127.0.0.1"}})
    assert_names(config_error(load_master, tmp_path, ENV),
                 str(path), "server 'm1'", "field 'port'", "missing")
    write(tmp_path, "master.json", {ENV: {"id": "m1", "host": "127.0.0.1", "port": "x"}})
    assert_names(config_error(load_master, tmp_path, ENV), "server 'm1'", "field 'port'")
    write(tmp_path, "master.json", {ENV: {"id": "m1", "port": 3005}})
    assert_names(config_error(load_master, tmp_path, ENV), "server 'm1'", "field 'host'")
    write(tmp_path, "master.json", {ENV: [1]})
    assert_names(config_error(load_master, tmp_path, ENV), str(path), "JSON object")


# --------------------------------------------------------------------------- other files

def test_admin_users(tmp_path):
    assert load_admin_users(tmp_path, ENV) == []
    path = write(tmp_path, "adminUser.json",
                 [{"id": "u1", "username": "root", "password": "pw", "level": 2},
                  {"username": "ops", "password": "pw2"}])
    users = load_admin_users(tmp_path, ENV)
    assert [(u["id"], u["username"], u["level"]) for u in users] == \
        [("u1", "root", 2), ("user-2", "ops", 1)]
    write(tmp_path, "adminUser.json", [{"username": "root"}])
    assert_names(config_error(load_admin_users, tmp_path, ENV),
                 str(path), "user #0", "field 'password'")
    write(tmp_path, "adminUser.json", [{"username": "a", "password": "b"}] * 2)
    assert_names(config_error(load_admin_users, tmp_path, ENV),
                 str(path), "'a'", "field 'username'", "duplicate")
    write(tmp_path, "adminUser.json", {"username": "a"})
    assert_names(config_error(load_admin_users, tmp_path, ENV), str(path), "list")


def test_load_json_config_plain_keyed_and_default(tmp_path):
    assert load_json_config(tmp_path, ENV, "serverProtos.json", default={}) == {}
    write(tmp_path, "dictionary.json", ["onChat", "onAdd"])
    assert load_json_config(tmp_path, ENV, "dictionary.json") == ["onChat", "onAdd"]
    write(tmp_path, "clientProtos.json", {ENV: {"chat.chatHandler.send": {}}, "production": {}})
    assert load_json_config(tmp_path, ENV, "clientProtos.json") == {"chat.chatHandler.send": {}}
    write(tmp_path, "serverProtos.json", {"onChat": {"required string msg": 1}})
    assert load_json_config(tmp_path, ENV, "serverProtos.json") == \
        {"onChat": {"required string msg": 1}}


# --------------------------------------------------------------------------- parse_server_args

def test_parse_server_args_good():
    d = parse_server_args(["id=chat-9", "host=127.0.0.1", "port=3", "serverType=chat",
                           "frontend=TRUE", "clientPort=3010", "clusterCount=2",
                           "args=--x=1", "cpu=1"])
    assert d == {"id": "chat-9", "host": "127.0.0.1", "port": 3, "serverType": "chat",
                 "frontend": True, "clientPort": 3010, "clusterCount": 2,
                 "args": "--x=1", "cpu": 1}


def test_parse_server_args_feeds_expand_cluster():
    d = parse_server_args(["host=127.0.0.1", "port=7000++", "serverType=area", "clusterCount=2"])
    assert d["port"] == "7000++"
    assert [(r.id, r.port, r.server_type) for r in expand_cluster(d)] == \
        [("area-1", 7000, "area"), ("area-2", 7001, "area")]


@pytest.mark.parametrize("pairs, named", [
    (["port"], "'port'"),
    (["=3"], "empty key"),
    (["port=1", "port=2"], "field 'port'"),
    (["port=abc"], "field 'port'"),
    (["clientPort=-1"], "field 'clientPort'"),
    (["frontend=maybe"], "field 'frontend'"),
    (["host="], "field 'host'"),
])
def test_parse_server_args_bad(pairs, named):
    msg = config_error(parse_server_args, pairs)
    assert_names(msg, "command line", named)
