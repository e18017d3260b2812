"""Records each lifecycle hook in the file named by LIFECYCLE_LOG (when set), for the tests."""
import os


def _log(app, name):
    path = os.environ.get("LIFECYCLE_LOG")
    if path:
        with open(path, "a") as f:
            f.write("%s %s %s\n" % (name, app.server_id, app.state))


def before_startup(app):
    _log(app, "before_startup")


def after_startup(app):
    _log(app, "after_startup")


def before_shutdown(app):
    _log(app, "before_shutdown")
