"""A plain HTTP client for the console tests: http.client, a cookie kept by hand."""
import http.client
import json
from urllib.parse import urlencode, urlparse


class Browserless:
    """What a script (or an attacker without the cookie) can do over plain HTTP."""

    def __init__(self, base_url):
        parsed = urlparse(base_url)
        self.host, self.port = parsed.hostname, parsed.port
        self.origin = "http://%s:%d" % (self.host, self.port)
        self.cookie = None

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            all_headers = dict(headers or {})
            if self.cookie:
                all_headers.setdefault("Cookie", self.cookie)
            conn.request(method, path, body=body, headers=all_headers)
            res = conn.getresponse()
            data = res.read()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, data
        finally:
            conn.close()

    def get_json(self, path):
        status, _, data = self.request("GET", path)
        return status, json.loads(data) if data[:1] in (b"{", b"[") else data

    def login(self, username, password, origin=True):
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if origin:
            headers["Origin"] = self.origin
        status, headers_in, body = self.request(
            "POST", "/login", urlencode({"username": username, "password": password}), headers)
        cookie = headers_in.get("set-cookie")
        if status == 303 and cookie:
            self.cookie = cookie.split(";", 1)[0]
        return status, headers_in, body

    def action(self, payload, csrf=None, origin=None):
        headers = {"Content-Type": "application/json"}
        if csrf is not None:
            headers["X-CSRF-Token"] = csrf
        if origin is not None:
            headers["Origin"] = origin
        status, _, data = self.request("POST", "/api/action", json.dumps(payload), headers)
        return status, json.loads(data) if data[:1] == b"{" else data
