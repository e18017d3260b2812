"""The gate also serves the chat page (examples/chat/web/) over plain HTTP.

The port is the gate's "webPort" in servers.json (0 binds any free port; leave the field out to
serve no page). Besides the files of web/, ``/gate.json`` tells the page the gate's client port,
so the page works whatever ports the cluster bound. The bound port is ``app.get("webPort")``.
"""
import json
import logging
import mimetypes
import os

from gevent.pywsgi import WSGIServer

logger = logging.getLogger(__name__)

WEB_DIR = "web"
INDEX = "index.html"
GATE_INFO_PATH = "/gate.json"
# .mjs is not in every mimetypes table, and browsers refuse modules served as anything else.
CONTENT_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".html": "text/html",
                 ".css": "text/css", ".json": "application/json"}


def after_startup(app):
    port = app.current_server.extra.get("webPort")
    if port is None:
        return
    web_dir = os.path.join(app.base_dir, WEB_DIR)
    gate_info = json.dumps({"port": app.current_server.client_port}).encode("utf-8")
    server = WSGIServer((app.current_server.host, int(port)), _static_site(web_dir, gate_info),
                        log=None, error_log=logger)
    server.start()
    app.set("webServer", server)
    app.set("webPort", server.server_port)
    logger.info("chat page at http://%s:%d/", app.current_server.host, server.server_port)


def before_shutdown(app):
    server = app.get("webServer")
    if server is not None:
        server.stop(timeout=1)
        app.set("webServer", None)


def _static_site(web_dir, gate_info):
    """A WSGI app serving the files under web_dir (GET and HEAD only, nothing outside web_dir)."""
    root = os.path.realpath(web_dir)

    def site(environ, start_response):
        method = environ["REQUEST_METHOD"]
        if method not in ("GET", "HEAD"):
            return _answer(start_response, "405 Method Not Allowed", b"only GET and HEAD\n",
                           "text/plain", method, [("Allow", "GET, HEAD")])
        path = environ.get("PATH_INFO") or "/"
        if path == GATE_INFO_PATH:
            return _answer(start_response, "200 OK", gate_info, "application/json", method)
        full = _file_under(root, path)
        if full is None:
            return _answer(start_response, "404 Not Found", b"not found\n", "text/plain", method)
        with open(full, "rb") as f:
            body = f.read()
        ext = os.path.splitext(full)[1].lower()
        content_type = CONTENT_TYPES.get(ext) or mimetypes.guess_type(full)[0] or "application/octet-stream"
        return _answer(start_response, "200 OK", body, content_type, method)

    return site


def _file_under(root, url_path):
    """The file url_path names under root, or None (missing, a directory's index absent, outside)."""
    if "\x00" in url_path:
        return None
    if url_path.endswith("/"):
        url_path += INDEX
    full = os.path.realpath(os.path.join(root, url_path.lstrip("/")))
    if os.path.commonpath([root, full]) != root or not os.path.isfile(full):
        return None
    return full


def _answer(start_response, status, body, content_type, method, extra_headers=()):
    if content_type.startswith("text/") or content_type == "application/json":
        content_type += "; charset=utf-8"
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))),
               ("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff")]
    headers.extend(extra_headers)
    start_response(status, headers)
    return [b""] if method == "HEAD" else [body]
