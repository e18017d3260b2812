"""The chat example's page server (app/servers/gate/lifecycle.py), over real sockets on 127.0.0.1."""
import json
import os
from types import SimpleNamespace

import pytest
from gevent import socket

from zpomelo import loader, static_site
from zpomelo.config import ServerRecord

pytestmark = pytest.mark.timeout(30)

CHAT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "examples", "chat")
GATE_CLIENT_PORT = 3914  # only reported in gate.json; nothing binds it here


class FakeApp(SimpleNamespace):
    """The part of the Application the lifecycle hooks use."""

    def get(self, key, default=None):
        return self.settings.get(key, default)

    def set(self, key, value):
        self.settings[key] = value


def gate_app(**extra):
    record = ServerRecord.from_dict({"id": "gate-server-1", "host": "127.0.0.1", "port": 0,
                                     "clientPort": GATE_CLIENT_PORT, "frontend": True, **extra},
                                    server_type="gate")
    return FakeApp(base_dir=CHAT_DIR, current_server=record, settings={})


@pytest.fixture
def lifecycle():
    return loader.load_lifecycle(CHAT_DIR, "gate")


@pytest.fixture
def site(lifecycle):
    app = gate_app(webPort=0)
    lifecycle.after_startup(app)
    yield app
    lifecycle.before_shutdown(app)


def http(port, method, path):
    """One HTTP/1.0 exchange -> (status code, headers dict, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(("%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % (method, path)).encode("latin-1"))
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def test_serves_the_page_with_the_ids_tests_rely_on(site):
    port = site.get("webPort")
    assert port > 0
    status, headers, body = http(port, "GET", "/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    page = body.decode("utf-8")
    for element_id in ("username", "room", "login", "users", "message", "send", "target", "messages", "error"):
        assert 'id="%s"' % element_id in page
    assert int(headers["content-length"]) == len(body)


@pytest.mark.parametrize("name", ["chat.mjs", "pomelo-client.mjs", "pomelo-protocol.mjs",
                                  "server-address.mjs"])
def test_modules_are_served_as_javascript(site, name):
    status, headers, body = http(site.get("webPort"), "GET", "/" + name)
    assert status == 200
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    own = os.path.join(CHAT_DIR, "web", name)     # the page's own file, else zpomelo's client
    with open(own if os.path.exists(own) else os.path.join(static_site.CLIENT_DIR, name), "rb") as f:
        assert body == f.read()


def test_gate_json_names_the_gates_client_port(site):
    status, headers, body = http(site.get("webPort"), "GET", "/gate.json")
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body) == {"port": GATE_CLIENT_PORT}


@pytest.mark.parametrize("path", [
    "/../app.py", "/%2e%2e/app.py", "/..%2fconfig/servers.json", "/web/../../app.py",
    "/%00", "/nope.html", "//etc/passwd",
])
def test_nothing_outside_web_is_served(site, path):
    status, _, body = http(site.get("webPort"), "GET", path)
    assert status == 404
    assert b"servers" not in body and b"import" not in body


def test_head_has_no_body_and_other_methods_are_refused(site):
    port = site.get("webPort")
    status, headers, body = http(port, "HEAD", "/index.html")
    assert status == 200 and body == b""
    assert int(headers["content-length"]) > 0
    status, headers, _ = http(port, "POST", "/")
    assert status == 405
    assert headers["allow"] == "GET, HEAD"


def test_no_web_port_serves_nothing(lifecycle):
    app = gate_app()
    lifecycle.after_startup(app)
    assert app.get("webServer") is None and app.get("webPort") is None
    lifecycle.before_shutdown(app)


def test_shutdown_closes_the_port(lifecycle):
    app = gate_app(webPort=0)
    lifecycle.after_startup(app)
    port = app.get("webPort")
    assert http(port, "GET", "/gate.json")[0] == 200
    lifecycle.before_shutdown(app)
    with pytest.raises(ConnectionRefusedError):
        http(port, "GET", "/")
