"""The master's web admin console: a small WSGI app on gevent's pywsgi, bound to the master's
host on ``adminWebPort`` (master.json).

Nothing but the login form and its stylesheet is served without a session: every other page
redirects to /login, every JSON endpoint answers 401. Logins are checked against
config/adminUser.json like the command line's (admin_users.py, the same per-address throttle).
Actions (stop, restart, kill, add) are POSTs carrying the session's CSRF token in a header,
checked again server-side against the user's level, and run the same AdminControl verbs as
`zpomelo stop/restart/kill/add`. Every answer forbids caching and framing and allows scripts
from this origin only (no inline script, no CDN).
"""
import json
import logging
import os
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

from gevent.pywsgi import WSGIServer

from zpomelo.errors import ZpomeloError
from zpomelo.master import admin_users
from zpomelo.master.console_data import LOG_LINES, ConsoleData
from zpomelo.master.console_sessions import COOKIE, SessionTable

logger = logging.getLogger(__name__)

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "console_static")
MAX_BODY = 16 * 1024
ACTIONS = ("stop", "restart", "kill", "add")
HEADERS = [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
           ("X-Frame-Options", "DENY"), ("Referrer-Policy", "same-origin"),
           ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; "
                                       "form-action 'self'; base-uri 'none'")]
PUBLIC_FILES = {"/console.css": ("console.css", "text/css; charset=utf-8")}
PRIVATE_FILES = {"/console.js": ("console.js", "text/javascript; charset=utf-8")}
STATUS = {200: "200 OK", 303: "303 See Other", 400: "400 Bad Request", 401: "401 Unauthorized",
          403: "403 Forbidden", 404: "404 Not Found", 405: "405 Method Not Allowed",
          409: "409 Conflict", 413: "413 Payload Too Large", 429: "429 Too Many Requests"}


def _static(name):
    with open(os.path.join(STATIC_DIR, name), "rb") as f:
        return f.read()


class Console:
    """The WSGI application (``__call__``) and its server (``start``/``stop``)."""

    def __init__(self, master):
        self.master = master
        self.data = ConsoleData(master)
        self.sessions = SessionTable()
        self.server = None
        self.port = None

    @property
    def url(self):
        return "http://%s:%d/" % (self.master.record.host, self.port)

    def start(self, port):
        self.server = WSGIServer((self.master.record.host, port), self, log=None,
                                 error_log=logger)
        self.server.start()
        self.port = self.server.server_port
        logger.info("admin console on %s (users of config/adminUser.json)", self.url)
        return self

    def stop(self):
        if self.server is not None:
            self.server.stop(timeout=1)
            self.server = None

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ, start_response):
        try:
            status, headers, body = self._route(environ)
        except Exception:
            logger.exception("admin console: %s %s failed", environ.get("REQUEST_METHOD"),
                             environ.get("PATH_INFO"))
            status, headers, body = _json(500, {"error": "internal error in the master; see "
                                                          "logs/master.log"})
        start_response(STATUS.get(status, "%d Error" % status), HEADERS + headers)
        return [body]

    def _route(self, environ):
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        if path == "/login":
            if method == "POST":
                return self._login(environ)
            return _page(200, self._login_page())
        if path in PUBLIC_FILES:
            name, kind = PUBLIC_FILES[path]
            return 200, [("Content-Type", kind)], _static(name)
        session = self.sessions.find(_cookie(environ))
        if session is None:
            if path.startswith("/api/") or path in PRIVATE_FILES:
                return _json(401, {"error": "not logged in: log in at /login"})
            return 303, [("Location", "/login"), ("Content-Type", "text/plain")], b"log in\n"
        if method == "POST":
            if not _same_origin(environ):
                return _json(403, {"error": "cross-origin request refused"})
            if not session.csrf_ok(environ.get("HTTP_X_CSRF_TOKEN")):
                return _json(403, {"error": "missing or wrong CSRF token (reload the page)"})
            if path == "/logout":
                self.sessions.end(session)
                return 303, [("Location", "/login"), ("Set-Cookie", SessionTable.cookie(None)),
                             ("Content-Type", "text/plain")], b"logged out\n"
            if path == "/api/action":
                return self._action(environ, session)
            return _json(404, {"error": "no such action endpoint"})
        if method != "GET":
            return _json(405, {"error": "use GET"})
        if path == "/":
            return _page(200, _static("console.html"))
        if path in PRIVATE_FILES:
            name, kind = PRIVATE_FILES[path]
            return 200, [("Content-Type", kind)], _static(name)
        if path == "/api/session":
            user = session.user
            return _json(200, {"username": user["username"], "level": user.get("level"),
                               "mayAct": admin_users.may_act(user), "csrf": session.csrf})
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if path == "/api/cluster":
            return _json(200, self.data.cluster())
        if path == "/api/routes":
            return _json(200, self.data.routes())
        if path == "/api/rpc":
            return _json(200, self.data.rpc())
        if path == "/api/users":
            return _json(200, self.data.users())
        if path == "/api/logs":
            try:
                lines = int(query.get("lines", [LOG_LINES])[0])
            except ValueError:
                return _json(400, {"error": "lines must be a number"})
            return _json(200, self.data.logs(lines))
        return _json(404, {"error": "no such page"})

    # ------------------------------------------------------------------ login

    def _login(self, environ):
        if not _same_origin(environ):
            return _json(403, {"error": "cross-origin login refused"})
        form = _read_body(environ)
        if form is None:
            return _page(413, self._login_page("the form is too large"))
        fields = parse_qs(form.decode("utf-8", "replace"))
        username = (fields.get("username") or [""])[0]
        password = (fields.get("password") or [""])[0]
        address = environ.get("REMOTE_ADDR")
        try:
            user = self.master.control.authenticate(username, password, address,
                                                    hint="check the name and password")
        except ZpomeloError as e:
            return _page(401, self._login_page(str(e)))
        session = self.sessions.create(user)
        logger.info("admin console: %r (level %s) logged in from %s", user["username"],
                    user.get("level"), address)
        return 303, [("Location", "/"), ("Set-Cookie", SessionTable.cookie(session)),
                     ("Content-Type", "text/plain")], b"logged in\n"

    def _login_page(self, error=""):
        page = _static("login.html").decode("utf-8")
        text = _escape(error)
        return page.replace("{{error}}", text).replace("{{master}}",
                                                       _escape(self.master.record.id)).encode()

    # ------------------------------------------------------------------ actions

    def _action(self, environ, session):
        user = session.user
        raw = _read_body(environ)
        if raw is None:
            return _json(413, {"error": "request too large"})
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return _json(400, {"error": "the body must be JSON {\"action\", \"server\"}"})
        action = body.get("action") if isinstance(body, dict) else None
        if action not in ACTIONS:
            return _json(400, {"error": "unknown action %r (known: %s)"
                                        % (action, ", ".join(ACTIONS))})
        if not admin_users.may_act(user):
            logger.warning("admin console: %r (level %s) tried %s: refused", user["username"],
                           user.get("level"), action)
            return _json(403, {"error": "user %r may only watch (level %s); actions need level "
                                        "%d in config/adminUser.json"
                                        % (user["username"], user.get("level"),
                                           admin_users.OPERATOR_LEVEL)})
        if not self.master.acting():
            return _json(409, {"error": "this master does not lead the cluster now"})
        try:
            verb, args = _verb_args(action, body)
            logger.info("admin console: %r runs %s %s", user["username"], verb, args)
            result = self.master.control.handle(verb, args, user)
        except ZpomeloError as e:
            return _json(409, {"error": str(e)})
        self.data.forget()
        return _json(200, {"ok": True, "result": result})


def _verb_args(action, body):
    """The AdminControl verb and arguments of a console action (one server at a time)."""
    if action == "add":
        record = body.get("record")
        if not isinstance(record, dict) or not record.get("serverType"):
            raise ZpomeloError("add needs a server record with at least serverType "
                               "(and id, host, port, frontend, clientPort)")
        record = dict(record)
        if not record.get("id"):
            record.pop("id", None)
            record["clusterCount"] = 1     # named <serverType>-<next free number>
        return "add", {"servers": [record]}
    server = body.get("server")
    if not isinstance(server, str) or not server:
        raise ZpomeloError("%s needs the id of one server" % action)
    if action == "restart":
        return "restart", {"id": server}
    return action, {"ids": [server]}


def _cookie(environ):
    try:
        jar = SimpleCookie(environ.get("HTTP_COOKIE", ""))
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def _same_origin(environ):
    """A browser's POST names its Origin; it must be this console's own (a missing one is a
    non-browser client, which has no cookie to abuse unless it logged in itself). The pages'
    Referrer-Policy is same-origin: with no-referrer Chromium would send "Origin: null"."""
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return True
    # the scheme is not compared: behind a TLS reverse proxy the browser's origin is https
    return urlsplit(origin).netloc == environ.get("HTTP_HOST", "") != ""


def _read_body(environ):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return b""
    if length > MAX_BODY:
        return None
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _json(status, obj):
    return status, [("Content-Type", "application/json")], \
        json.dumps(obj, default=str).encode("utf-8")


def _page(status, body):
    return status, [("Content-Type", "text/html; charset=utf-8")], body


def _escape(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def console_port(record, env):
    """The port to serve the console on, or None (off). adminWebPort in master.json wins
    (false/null: off); without it, development masters on loopback serve one on a free port."""
    if "adminWebPort" in record.extra:
        port = record.extra["adminWebPort"]
        return None if port is None or port is False else int(port)
    loopback = record.host in ("127.0.0.1", "localhost", "::1") or record.host.startswith("127.")
    return 0 if env == "development" and loopback else None


def start_console(master):
    """The running Console, or None when master.json turns it off."""
    port = console_port(master.record, master.env)
    if port is None:
        return None
    return Console(master).start(port)

