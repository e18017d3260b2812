"""A game's web page served by one of its servers over plain HTTP (gevent's WSGI server).

``serve(app, web_dir, info_path, info)`` serves the files under ``web_dir`` (GET and HEAD only,
nothing outside it) and, at ``info_path``, the JSON ``info`` (what the page needs to know of the
cluster, such as the client port, whatever ports it bound). The port is the server's "webPort"
in servers.json (0: any free port; no field: no page); the bound port is ``app.get("webPort")``.
For development and examples: behind a real site, serve the files with your web server.

Pomelo's browser client that ships with zpomelo (``zpomelo/web/``: ``pomelo-client.mjs``,
``pomelo-protocol.mjs``; ``server-address.mjs``, how a page finds its server; ``page.css``, the
examples' shared look) is served beside the page's own files, so every page imports it as
``./pomelo-client.mjs`` and no project keeps a copy; a file of the same name under ``web_dir``
wins.
"""
import json
import logging
import mimetypes
import os

from gevent.pywsgi import WSGIServer

logger = logging.getLogger(__name__)

INDEX = "index.html"
CLIENT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
# .mjs is not in every mimetypes table, and browsers refuse modules served as anything else.
CONTENT_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".html": "text/html",
                 ".css": "text/css", ".json": "application/json"}


def serve(app, web_dir, info_path, info):
    """Start the page server when the server's record has a webPort; the WSGIServer or None."""
    port = app.current_server.extra.get("webPort")
    if port is None:
        return None
    body = json.dumps(info).encode("utf-8")
    server = WSGIServer((app.current_server.host, int(port)), site(web_dir, {info_path: body}),
                        log=None, error_log=logger)
    server.start()
    app.set("webServer", server)
    app.set("webPort", server.server_port)
    logger.info("%s: web page at http://%s:%d/", app.current_server.id, app.current_server.host,
                server.server_port)
    return server


def stop(app):
    server = app.get("webServer")
    if server is not None:
        server.stop(timeout=1)
        app.set("webServer", None)


def site(web_dir, documents):
    """The WSGI app: ``documents`` ({path: JSON bytes}) first, else the files under web_dir,
    else zpomelo's browser client."""
    root = os.path.realpath(web_dir)
    client_root = os.path.realpath(CLIENT_DIR)

    def app(environ, start_response):
        method = environ["REQUEST_METHOD"]
        if method not in ("GET", "HEAD"):
            return _answer(start_response, "405 Method Not Allowed", b"only GET and HEAD\n",
                           "text/plain", method, [("Allow", "GET, HEAD")])
        path = environ.get("PATH_INFO") or "/"
        if path in documents:
            return _answer(start_response, "200 OK", documents[path], "application/json", method)
        full = file_under(root, path) or file_under(client_root, path)
        if full is None:
            return _answer(start_response, "404 Not Found", b"not found\n", "text/plain", method)
        with open(full, "rb") as f:
            body = f.read()
        ext = os.path.splitext(full)[1].lower()
        content_type = CONTENT_TYPES.get(ext) or mimetypes.guess_type(full)[0] or \
            "application/octet-stream"
        return _answer(start_response, "200 OK", body, content_type, method)
    return app


def file_under(root, url_path):
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
