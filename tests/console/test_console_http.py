"""The web console over plain HTTP against a real cluster: nothing readable without a session,
wrong passwords and watch-only users refused server-side, CSRF and origin checks, and the
numbers the servers report (routes, RPC calls, users, logs) matching the traffic sent."""
import pytest

from zpomelo.client import Client
from zpomelo.testing import wait_until

from .conftest import OPERATOR, WATCHER
from .http_helper import Browserless

API = ("/api/session", "/api/cluster", "/api/routes", "/api/rpc", "/api/users",
       "/api/logs?lines=5")


@pytest.mark.timeout(120)
def test_nothing_is_readable_without_a_session(console_cluster):
    _, url = console_cluster
    anon = Browserless(url)
    status, headers, _ = anon.request("GET", "/")
    assert status == 303 and headers["location"] == "/login"
    assert anon.request("GET", "/console.js")[0] == 401
    for path in API:
        status, body = anon.get_json(path)
        assert status == 401, path
        assert "log in" in body["error"]
    assert anon.action({"action": "stop", "server": "chat-server-1"})[0] == 401
    anon.cookie = "zpomelo_console=" + "A" * 43          # a guessed token
    assert anon.get_json("/api/cluster")[0] == 401
    assert anon.request("GET", "/login")[0] == 200        # the form itself is public
    status, headers, _ = anon.request("GET", "/api/cluster")
    assert headers["cache-control"] == "no-store" and "default-src 'self'" in \
        headers["content-security-policy"]


@pytest.mark.timeout(120)
def test_a_wrong_password_or_unknown_user_gets_no_session(console_cluster):
    _, url = console_cluster
    anon = Browserless(url)
    status, headers, body = anon.login(OPERATOR[0], "not-the-password")
    assert status == 401 and "set-cookie" not in headers
    assert b"wrong username or password" in body
    status, headers, _ = anon.login("nobody", OPERATOR[1])
    assert status == 401 and "set-cookie" not in headers
    assert anon.get_json("/api/cluster")[0] == 401
    status, headers, _ = anon.login(OPERATOR[0], OPERATOR[1], origin=False)   # a script
    assert status == 303
    cookie = headers["set-cookie"]
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="):
        assert flag in cookie
    assert anon.get_json("/api/cluster")[0] == 200


@pytest.mark.timeout(120)
def test_a_watch_only_user_sees_everything_and_changes_nothing(console_cluster):
    cluster, url = console_cluster
    watcher = Browserless(url)
    assert watcher.login(*WATCHER)[0] == 303
    status, me = watcher.get_json("/api/session")
    assert status == 200 and me["mayAct"] is False and me["level"] == 0
    status, data = watcher.get_json("/api/cluster")
    rows = {row["id"]: row for row in data["servers"]}
    assert rows["chat-server-1"]["state"] == "running"
    pid = rows["chat-server-1"]["pid"]
    for payload in ({"action": "stop", "server": "chat-server-1"},
                    {"action": "kill", "server": "chat-server-1"},
                    {"action": "add", "record": {"serverType": "chat", "host": "127.0.0.1",
                                                 "port": 0}}):
        status, body = watcher.action(payload, csrf=me["csrf"], origin=watcher.origin)
        assert status == 403, payload
        assert "may only watch" in body["error"]
    after = cluster.servers()
    assert after["chat-server-1"]["pid"] == pid and after["chat-server-1"]["state"] == "running"
    assert "chat-server-3" not in after
    # the command line enforces the same level
    run = cluster.zpomelo("stop", "-e", cluster.env, "-u", WATCHER[0], "-p", WATCHER[1],
                          "chat-server-1", check=False)
    assert run.returncode != 0 and "may watch" in run.stdout + run.stderr
    assert cluster.servers()["chat-server-1"]["pid"] == pid


@pytest.mark.timeout(120)
def test_an_action_needs_the_csrf_token_and_the_console_origin(console_cluster):
    cluster, url = console_cluster
    ops = Browserless(url)
    assert ops.login(*OPERATOR)[0] == 303
    _, me = ops.get_json("/api/session")
    assert me["mayAct"] is True
    target = {"action": "stop", "server": "chat-server-1"}
    assert ops.action(target)[0] == 403                                   # no token
    assert ops.action(target, csrf="x" * 43)[0] == 403                    # a wrong one
    assert ops.action(target, csrf=me["csrf"], origin="http://evil.example")[0] == 403
    assert ops.action({"action": "reboot", "server": "x"}, csrf=me["csrf"])[0] == 400
    bad = {"X-CSRF-Token": me["csrf"], "Content-Type": "application/json"}
    assert ops.request("POST", "/api/action", b"{not json", bad)[0] == 400
    assert ops.request("POST", "/api/action", b"[1, 2]", bad)[0] == 400
    assert ops.request("POST", "/api/action", b"x" * 20000, bad)[0] == 413
    assert ops.action({"action": "stop"}, csrf=me["csrf"])[0] == 409       # no server named
    assert ops.get_json("/api/nothing")[0] == 404
    status, body = ops.action({"action": "stop", "server": "no-such"}, csrf=me["csrf"])
    assert status == 409 and "no server with id" in body["error"]
    assert cluster.servers()["chat-server-1"]["state"] == "running"
    status, _, _ = ops.request("POST", "/logout", b"", {"X-CSRF-Token": me["csrf"]})
    assert status == 303
    assert ops.get_json("/api/cluster")[0] == 401                         # the session ended


@pytest.mark.timeout(120)
def test_routes_rpc_users_and_logs_reflect_the_traffic(console_cluster):
    cluster, url = console_cluster
    servers = cluster.servers()
    port = servers["connector-server-1"]["clientPort"]
    clients = []
    try:
        for name in ("ann", "bob", "cid"):
            c = Client.connect("127.0.0.1", port, transport="ws")
            clients.append(c)
            assert "users" in c.request("connector.entryHandler.enter",
                                        {"username": name, "rid": "hall"})
        for i in range(7):
            assert clients[0].request("chat.chatHandler.send", {"rid": "hall", "from": "ann", "content": "hi %d" % i,
                                                                 "target": "*"})["code"] == 200
        ops = Browserless(url)
        assert ops.login(*OPERATOR)[0] == 303

        def route_rows():
            rows = ops.get_json("/api/routes")[1]["routes"]
            return {(r["server"], r["route"]): r for r in rows}

        rows = wait_until(lambda: route_rows() if
                          route_rows().get(("connector-server-1", "connector.entryHandler.enter"),
                                           {}).get("count", 0) >= 3 else None, 10,
                          message="the enter requests in /api/routes")
        enter = rows[("connector-server-1", "connector.entryHandler.enter")]
        assert enter["count"] >= 3 and enter["errors"] == 0
        assert 0 < enter["min"] <= enter["avg"] <= enter["max"] and enter["p99"] <= enter["max"]
        sends = sum(r["count"] for (server, route), r in rows.items()
                    if route == "chat.chatHandler.send")
        assert sends >= 7
        calls = ops.get_json("/api/rpc")[1]["calls"]
        adds = [c for c in calls if c["server"] == "connector-server-1"
                and c["method"] == "chatRemote.add" and c["targetType"] == "chat"]
        assert sum(c["count"] for c in adds) >= 3
        forwards = [c for c in calls if c["server"] == "connector-server-1"
                    and c["method"] == "_sys.forward"]
        assert sum(c["count"] for c in forwards) >= 7
        users = ops.get_json("/api/users")[1]
        mine = {u["uid"]: u for u in users["users"] if u["uid"].endswith("*hall")}
        assert set(mine) == {"ann*hall", "bob*hall", "cid*hall"}
        assert all(u["frontend"] == "connector-server-1" and u["address"].startswith("127.0.0.1:")
                   and u["loginTime"] for u in mine.values())
        logs = ops.get_json("/api/logs?lines=5")[1]["logs"]
        assert set(servers) <= set(logs)
        assert any("logged in" in line for line in logs["master-server-1"])
        assert logs["chat-server-1"] and any("chat-server-1" in line
                                             for line in logs["chat-server-1"])
        assert all(len(lines) <= 5 for lines in logs.values())
        assert ops.get_json("/api/logs?lines=x")[0] == 400
    finally:
        for c in clients:
            c.close()


@pytest.mark.timeout(120)
def test_an_operator_restarts_a_server_through_the_api(console_cluster):
    cluster, url = console_cluster
    before = cluster.servers()["chat-server-2"]
    ops = Browserless(url)
    assert ops.login(*OPERATOR)[0] == 303
    _, me = ops.get_json("/api/session")
    status, body = ops.action({"action": "restart", "server": "chat-server-2"},
                              csrf=me["csrf"], origin=ops.origin)
    assert status == 200 and body["result"][0]["id"] == "chat-server-2"
    after = cluster.servers()["chat-server-2"]
    assert after["state"] == "running" and after["pid"] != before["pid"]
    assert after["restarts"] == before["restarts"] + 1
    rows = {r["id"]: r for r in ops.get_json("/api/cluster")[1]["servers"]}
    assert rows["chat-server-2"]["pid"] == after["pid"]
