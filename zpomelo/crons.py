"""Crons per server type, as Pomelo: config/crons.json entries run game functions on a schedule.

``config/crons.json`` is keyed by environment then server type (``config/<env>/crons.json`` may
leave out the environment level)::

    {"development": {"chat": [{"id": 1, "time": "0 30 * * * *", "action": "chatCron.sendMoney"}]}}

``time`` is a 6-field cron expression, seconds first (second minute hour day-of-month month
day-of-week), in the server's local time; ``action`` is ``<file>.<function>`` of
``app/servers/<type>/cron/<file>.py``, called as ``function(app)``; an optional ``serverId`` runs
the entry on that one server only. The cron syntax is croniter's (the optional ``[cron]`` extra),
imported only when a server has crons, so projects without crons do not need it.

One greenlet sleeps until the next due time; each run gets its own greenlet, so a slow cron does
not delay the others. A run that raises is logged and the cron keeps its schedule; a cron whose
previous run is still going is skipped (and logged) rather than piled up.
"""
import datetime
import logging
import time

import gevent
import gevent.event

from zpomelo import loader
from zpomelo.config import _read_json, find_config_file
from zpomelo.errors import ConfigError

logger = logging.getLogger(__name__)

CRON_DIR = "cron"
CRONS_FILE = "crons.json"
FIELDS = 6
STOP_JOIN_SECONDS = 1.0


def _croniter():
    try:
        from croniter import croniter
    except ImportError:
        raise ConfigError("crons need the croniter library, which is not installed; "
                          "run `pip install zpomelo[cron]`") from None
    return croniter


def next_run(expression, after):
    """The first time (epoch seconds, local time zone) strictly after ``after`` that matches."""
    croniter = _croniter()
    from dateutil.tz import tzlocal     # croniter's own dependency
    start = datetime.datetime.fromtimestamp(after, tz=tzlocal())
    return croniter(expression, start, second_at_beginning=True).get_next(float)


class Cron:
    """One checked entry: its id, expression, action name and function, and its next due time."""

    def __init__(self, cron_id, expression, action, fn):
        self.id = cron_id
        self.time = expression
        self.action = action
        self.fn = fn
        self.next_at = None
        self.running = None     # the greenlet of the run in progress

    def __repr__(self):
        return "<Cron %r %r %s>" % (self.id, self.time, self.action)


def _bad(where, server_type, cron_id, field, message):
    label = "server type %r" % (server_type,)
    if cron_id is not None:
        label += ", cron id %r" % (cron_id,)
    if field:
        label += ", field %r" % (field,)
    return ConfigError("%s: %s" % (label, message), path=where)


def check_entries(entries, where, server_type, actions, server_id, known_ids=()):
    """Check a list of cron entries of one server type; the Crons that run on ``server_id``.

    ``actions`` is {file: {function: fn}} of the type's cron/ directory. Every entry of the type
    is checked (they share the code), even ones another server runs.
    """
    if not isinstance(entries, list):
        raise _bad(where, server_type, None, None,
                   "must be a list of crons [{\"id\", \"time\", \"action\"}], got %s"
                   % type(entries).__name__)
    croniter = _croniter() if entries else None
    seen = set(known_ids)
    crons = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _bad(where, server_type, None, None,
                       "cron #%d must be a JSON object {\"id\", \"time\", \"action\"}, got %r"
                       % (index, entry))
        cron_id = entry.get("id")
        if isinstance(cron_id, bool) or not isinstance(cron_id, (int, str)) or cron_id == "":
            raise _bad(where, server_type, None, "id",
                       "cron #%d needs an id (a number or a string), got %r" % (index, cron_id))
        if cron_id in seen:
            raise _bad(where, server_type, cron_id, "id",
                       "duplicate id; give each cron of a server type its own id")
        seen.add(cron_id)
        expression = entry.get("time")
        if not isinstance(expression, str) or len(expression.split()) != FIELDS \
                or not croniter.is_valid(expression, second_at_beginning=True):
            raise _bad(where, server_type, cron_id, "time",
                       "%r is not a 6-field cron expression; write \"second minute hour "
                       "day-of-month month day-of-week\", e.g. \"0 30 * * * *\"" % (expression,))
        fn = _action(entry.get("action"), where, server_type, cron_id, actions)
        only_on = entry.get("serverId")
        if only_on is not None and not isinstance(only_on, str):
            raise _bad(where, server_type, cron_id, "serverId",
                       "must be a server id string, got %r" % (only_on,))
        if only_on is None or only_on == server_id:
            crons.append(Cron(cron_id, expression, entry["action"], fn))
    return crons


def _action(action, where, server_type, cron_id, actions):
    directory = "app/servers/%s/%s/" % (server_type, CRON_DIR)
    if not isinstance(action, str) or action.count(".") != 1:
        raise _bad(where, server_type, cron_id, "action",
                   "%r is not \"<file>.<function>\" naming a function of %s<file>.py"
                   % (action, directory))
    module, function = action.split(".")
    if module not in actions:
        raise _bad(where, server_type, cron_id, "action",
                   "no file %s%s.py (files there: %s); create it or fix the action"
                   % (directory, module, ", ".join(sorted(actions)) or "none"))
    if function not in actions[module]:
        raise _bad(where, server_type, cron_id, "action",
                   "no public function %s in %s%s.py (functions there: %s); define "
                   "`def %s(app): ...` or fix the action"
                   % (function, directory, module, ", ".join(sorted(actions[module])) or "none",
                      function))
    return actions[module][function]


def load_entries(base_dir, env, server_type):
    """(path, this server type's entries from crons.json) or (path, []) without a file."""
    path = find_config_file(base_dir, env, CRONS_FILE)
    if not path.is_file():
        return path, []
    data = _read_json(path)
    per_env_dir = path.parent.name == str(env)
    if isinstance(data, dict) and str(env) in data:
        data = data[str(env)]
    elif not per_env_dir:
        logger.debug("%s has no section for environment %s: no crons", path, env)
        return path, []
    if not isinstance(data, dict):
        raise ConfigError("must be a JSON object {\"<serverType>\": [crons...]}, got %s"
                          % type(data).__name__, path=path)
    return path, data.get(server_type, [])


class CronScheduler:
    """This server's crons: loaded at start, run after startup, stopped first at stop."""

    def __init__(self, app):
        self.app = app
        self.crons = {}         # id -> Cron
        self._actions = None
        self._added = {}        # id -> entry given to add() at run time (kept across reloads)
        self._loop = None
        self._wake = gevent.event.Event()

    def load(self):
        """Read and check crons.json for this server (a ConfigError before anything binds)."""
        app = self.app
        path, entries = load_entries(app.base_dir, app.env, app.server_type)
        self._actions = loader.load_services(app.base_dir, app.server_type, CRON_DIR) \
            if entries else None
        for cron in check_entries(entries, path, app.server_type, self._actions or {},
                                  app.server_id):
            self.crons[cron.id] = cron

    def add(self, entries):
        """Add crons at run time (the crons.json format); the ids must be new."""
        app = self.app
        if self._actions is None:
            self._actions = loader.load_services(app.base_dir, app.server_type, CRON_DIR)
        added = check_entries(list(entries), "app.add_crons", app.server_type, self._actions,
                              app.server_id, known_ids=self.crons)
        now = time.time()
        for cron in added:
            if self._loop is not None:
                cron.next_at = next_run(cron.time, now)
            self.crons[cron.id] = cron
        self._added.update((e["id"], dict(e)) for e in entries if e.get("id") in self.crons)
        self._wake.set()
        return [cron.id for cron in added]

    def remove(self, ids):
        """Remove crons by id (unknown ids are ignored); a run in progress finishes."""
        removed = [self.crons.pop(cron_id).id for cron_id in ids if cron_id in self.crons]
        for cron_id in removed:
            self._added.pop(cron_id, None)
        self._wake.set()
        return removed

    def prepare_reload(self):
        """(actions, {id: Cron}) from crons.json and the cron/ files imported again, plus the
        crons added at run time bound to the new functions (zpomelo.reload).

        Raises (ConfigError, or what an import raises) without changing anything."""
        app = self.app
        path, entries = load_entries(app.base_dir, app.env, app.server_type)
        added = list(self._added.values())
        actions = loader.load_services(app.base_dir, app.server_type, CRON_DIR,
                                       from_source=True) if entries or added else None
        crons = check_entries(entries, path, app.server_type, actions or {}, app.server_id)
        crons += check_entries(added, "app.add_crons", app.server_type, actions or {},
                               app.server_id, known_ids=[c["id"] for c in entries
                                                         if isinstance(c, dict)])
        return actions, {cron.id: cron for cron in crons}

    def swap(self, prepared):
        """Run the prepared crons from now on. A cron whose id and time are unchanged keeps its
        next due time (and its run in progress, which finishes on the old code)."""
        actions, crons = prepared
        for cron in crons.values():
            old = self.crons.get(cron.id)
            if old is not None and old.time == cron.time:
                cron.next_at, cron.running = old.next_at, old.running
        self._actions = actions
        self.crons = crons
        self._wake.set()

    def start(self):
        """Schedule the crons; the loop runs even with none, so that add() later schedules."""
        if self._loop is not None:
            return
        now = time.time()
        for cron in self.crons.values():
            cron.next_at = next_run(cron.time, now)
        self._loop = gevent.spawn(self._run)
        if self.crons:
            logger.info("%s: %d cron(s) scheduled", self.app.server_id, len(self.crons))

    def stop(self):
        """No new runs; runs in progress get a moment to finish, then are killed."""
        if self._loop is None:
            return
        self._loop.kill()
        self._loop = None
        running = [c.running for c in self.crons.values() if c.running is not None]
        gevent.joinall(running, timeout=STOP_JOIN_SECONDS)
        gevent.killall([g for g in running if not g.dead], block=False)

    def _run(self):
        while True:
            self._wake.clear()
            now = time.time()
            for cron in list(self.crons.values()):
                if cron.next_at is None:
                    cron.next_at = next_run(cron.time, now)
                elif cron.next_at <= now:
                    self._fire(cron)
                    cron.next_at = next_run(cron.time, now)   # missed runs are not caught up
            due = [c.next_at for c in self.crons.values()]
            self._wake.wait(max(0.0, min(due) - time.time()) if due else None)

    def _fire(self, cron):
        if cron.running is not None and not cron.running.dead:
            logger.warning("%s: cron %r (%s) skipped: its previous run is still going",
                           self.app.server_id, cron.id, cron.action)
            return
        cron.running = gevent.spawn(self._call, cron)

    def _call(self, cron):
        try:
            cron.fn(self.app)
        except Exception:
            logger.exception("%s: cron %r (%s) failed; it keeps its schedule",
                             self.app.server_id, cron.id, cron.action)
