"""The connector also serves the game's page (web/) when its record has a "webPort"
(servers.json; 0 binds any free port). ``/connector.json`` tells the page the client port."""
import os

from zpomelo import static_site


def after_startup(app):
    static_site.serve(app, os.path.join(app.base_dir, "web"), "/connector.json",
                      {"port": app.current_server.client_port})


def before_shutdown(app):
    static_site.stop(app)
