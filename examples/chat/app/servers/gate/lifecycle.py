"""The gate also serves the chat page (examples/chat/web/) over plain HTTP.

The port is the gate's "webPort" in servers.json (0 binds any free port; leave the field out to
serve no page). Besides the files of web/, ``/gate.json`` tells the page the gate's client port,
so the page works whatever ports the cluster bound. The bound port is ``app.get("webPort")``.
"""
import os

from zpomelo import static_site

WEB_DIR = "web"
GATE_INFO_PATH = "/gate.json"


def after_startup(app):
    static_site.serve(app, os.path.join(app.base_dir, WEB_DIR), GATE_INFO_PATH,
                      {"port": app.current_server.client_port})


def before_shutdown(app):
    static_site.stop(app)
