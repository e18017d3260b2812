"""Hot reload of game code: `zpomelo reload [-t type] [-i id]`, its three halves side by side.

- In each server (``reload_code``): import the handlers, remotes, cron functions (with
  config/crons.json) and app/routes/<type>.py again, into new module objects, and only when every
  import succeeded swap the dispatch tables in, without yielding to another greenlet in between.
  A request or call that already looked up its function finishes on the old code (the old module
  objects are never changed); the next one runs the new code. When an import fails (a syntax
  error, an exception at import, a cron naming a missing function) nothing is swapped, the
  modules registered in ``sys.modules`` are put back, the old code keeps serving, and the error
  (file, line, message) is logged and returned.
- In the master (``reload_servers``): send the "reload" command to the chosen running servers
  at once and collect every answer.
- In the CLI (``reload_command``): print one line per server; exit 1 when any server failed.

With ``app.set("reloadOnChange", True)`` (development) a server also reloads by itself when one of
those files changes (``FileWatcher``: mtimes polled once a second; no dependency).
Not reloaded: app.py, lifecycle.py, components, filters, models, config other than crons.json,
and modules the game code imports itself (a helper package stays as first imported).
"""
import logging
import os
import sys
import traceback

import click
import gevent

from zpomelo import gcfreeze, loader
from zpomelo.crons import CRON_DIR, CRONS_FILE
from zpomelo.db.routes import reloaded_route_functions
from zpomelo.errors import ConfigError, ZpomeloError

logger = logging.getLogger(__name__)

COMMAND = "reload"              # the master -> server command
SERVER_TIMEOUT = 30.0           # how long the master waits for each server's answer
POLL_SECONDS = 1.0              # reloadOnChange: how often file mtimes are read
APP_MODULE_PREFIXES = ("zpomelo_app.", "zpomelo_app_routes_")


# ---------------------------------------------------------------------- server side

def reload_code(app):
    """Import this server's game code again and swap it in; a dict for the master:
    ``{"ok": True, "handlers": n, "remotes": n, "crons": n, "routes": [types]}`` or
    ``{"ok": False, "error": {"file", "line", "message"}}`` (the old code keeps serving)."""
    saved = {name: module for name, module in sys.modules.items()
             if name.startswith(APP_MODULE_PREFIXES)}
    try:
        handlers = app.handler_service.route_table(
            loader.load_services(app.base_dir, app.server_type, loader.HANDLER_DIR, True))
        remotes = loader.load_services(app.base_dir, app.server_type, loader.REMOTE_DIR, True)
        crons = app.crons.prepare_reload()
        routes = reloaded_route_functions(app)
    except Exception as exc:
        _restore_modules(saved)
        error = describe_error(exc, app.base_dir)
        logger.error("%s: reload failed, the old code keeps serving: %s%s: %s", app.server_id,
                     error["file"] or "", ":%s" % error["line"] if error["line"] else "",
                     error["message"])
        return {"ok": False, "error": error}
    # the swap: plain assignments, no gevent switch between them
    app.handler_service.replace(handlers)
    app.remotes.replace(remotes)
    app.crons.swap(crons)
    app.router.replace_routes(routes)
    gcfreeze.refreeze()     # the old modules may be garbage now
    summary = {"ok": True, "handlers": len(handlers),
               "remotes": sum(len(fns) for fns in remotes.values()), "crons": len(crons[1]),
               "routes": sorted(t for t, fn in routes.items()
                                if getattr(fn, "from_routes_file", False))}
    logger.info("%s: reloaded %d handler routes, %d remote methods, %d crons, routes of %s",
                app.server_id, summary["handlers"], summary["remotes"], summary["crons"],
                ", ".join(summary["routes"]) or "no type")
    return summary


def _restore_modules(saved):
    """sys.modules as before the reload: the new, half-imported modules out, the old ones back."""
    for name in [n for n in sys.modules if n.startswith(APP_MODULE_PREFIXES)]:
        if name not in saved:
            del sys.modules[name]
    sys.modules.update(saved)


def describe_error(exc, base_dir):
    """{"file", "line", "message"} of a failed import: the game file and line that failed."""
    cause = exc.__cause__ if isinstance(exc, ConfigError) and exc.__cause__ else exc
    message = "%s: %s" % (type(cause).__name__, cause)
    if isinstance(cause, SyntaxError):
        return {"file": cause.filename, "line": cause.lineno,
                "message": "%s: %s" % (type(cause).__name__, cause.msg)}
    frames = traceback.extract_tb(cause.__traceback__)
    ours = [f for f in frames if os.path.abspath(f.filename).startswith(base_dir + os.sep)]
    if ours:
        return {"file": ours[-1].filename, "line": ours[-1].lineno, "message": message}
    path = getattr(cause, "path", None)     # a ConfigError of crons.json names its file
    return {"file": str(path) if path else None, "line": None, "message": message}


def watched_files(app):
    """{path: mtime} of what a reload imports again, for reloadOnChange."""
    root = os.path.join(loader.servers_dir(app.base_dir), app.server_type)
    directories = [os.path.join(root, kind) for kind in (loader.HANDLER_DIR, loader.REMOTE_DIR,
                                                         CRON_DIR)]
    directories.append(os.path.join(app.base_dir, "app", "routes"))
    paths = [os.path.join(d, f) for d in directories if os.path.isdir(d)
             for f in os.listdir(d) if f.endswith(".py")]
    paths += [os.path.join(app.base_dir, "config", CRONS_FILE),
              os.path.join(app.base_dir, "config", app.env, CRONS_FILE)]
    found = {}
    for path in paths:
        try:
            found[path] = os.stat(path).st_mtime_ns
        except OSError:
            pass            # gone between listdir and stat, or no crons.json: not watched
    return found


class FileWatcher:
    """reloadOnChange: polls the game files' mtimes and reloads when any changed."""

    def __init__(self, app, interval=POLL_SECONDS):
        self.app = app
        self.interval = interval
        self.last = None        # the last reload's result (reload_code), for tests and debugging
        self._greenlet = None

    def start(self):
        # the first look now, not when the greenlet first runs: an edit in between counts
        self._greenlet = gevent.spawn(self._run, watched_files(self.app))

    def stop(self):
        if self._greenlet is not None:
            self._greenlet.kill()
            self._greenlet = None

    def _run(self, seen):
        while True:
            gevent.sleep(self.interval)
            now = watched_files(self.app)
            if now != seen:
                seen = now
                logger.info("%s: game files changed, reloading", self.app.server_id)
                self.last = reload_code(self.app)


# ---------------------------------------------------------------------- master side

def reload_servers(control, args):
    """The master's "reload" verb: every chosen server reloads at once; one result per server,
    in id order (servers that are not running get ok False, the others still reload)."""
    master = control.master
    procs = control._select(args.get("type"), args.get("id"))
    results = {}

    def one(proc):
        row = {"id": proc.server_id, "serverType": proc.record.get("serverType")}
        if proc.server_id not in master.registry:
            row.update(ok=False, error={"file": None, "line": None, "message":
                                        "not running (%s): nothing to reload" % proc.state})
        else:
            try:
                row.update(master.command(proc.server_id, COMMAND, timeout=SERVER_TIMEOUT))
            except ZpomeloError as e:
                row.update(ok=False, error={"file": None, "line": None, "message": str(e)})
        results[proc.server_id] = row
    gevent.joinall([gevent.spawn(one, p) for p in procs])
    return [results[p.server_id] for p in procs]


# ---------------------------------------------------------------------- command line

def format_result(row):
    if row.get("ok"):
        return "reloaded %s: %d handler routes, %d remote methods, %d crons%s" % (
            row["id"], row.get("handlers", 0), row.get("remotes", 0), row.get("crons", 0),
            ", routes of %s" % ", ".join(row["routes"]) if row.get("routes") else "")
    error = row.get("error") or {}
    where = error.get("file") or ""
    if where and error.get("line"):
        where += ":%s" % error["line"]
    return "%s: reload failed, the old code keeps serving: %s%s" % (
        row["id"], where + ": " if where else "", error.get("message"))


def reload_command(admin_options, call, emit):
    """The click command; cli.py gives it its shared admin options and helpers."""
    @click.command(name="reload", context_settings=dict(help_option_names=["--help"]))
    @admin_options
    @click.option("-t", "--type", "server_type", default=None, help="only servers of this type")
    @click.option("-i", "--id", "server_id", default=None, help="only this server")
    def reload(server_type, server_id, **opts):
        """Reload handlers, remotes, crons and routes in running servers (all, a type, or one).

        Requests already running finish on the old code, new ones run the new code. When a file
        fails to import, that server keeps its old code and the error is printed (exit code 1)."""
        rows = call(opts, "reload", {"type": server_type, "id": server_id},
                    timeout=SERVER_TIMEOUT + 10)
        failed = [row for row in rows if not row.get("ok")]
        emit(opts, rows, "\n".join(format_result(row) for row in rows if row.get("ok"))
             or ("no server reloaded" if failed else "no server to reload"))
        if failed:
            if not opts["as_json"]:
                for row in failed:
                    click.echo("error: " + format_result(row), err=True)
            sys.exit(1)
    return reload
