"""What the web console shows, gathered by the master: the cluster table (the same rows as
`zpomelo list`), and from every registered server its route latencies, RPC calls by target,
online users and last log lines (the ``report`` command on each server's control channel,
answered by zpomelo/reports.py on the server's own host).

Several browsers polling at once cost the servers one round of questions: each answer is kept
for CACHE_SECONDS, and a question already under way is shared rather than asked again.
"""
import logging
import time

import gevent
import gevent.event

from zpomelo import reports
from zpomelo.errors import ZpomeloError
from zpomelo.master import runstate, wire

logger = logging.getLogger(__name__)

CACHE_SECONDS = 1.0
REPORT_TIMEOUT = 2.0
LOG_LINES = 40
MAX_USERS = 1000


class ConsoleData:
    def __init__(self, master):
        self.master = master
        self._cache = {}        # key -> (monotonic time, value)
        self._asking = {}       # key -> AsyncResult of the question under way

    def forget(self):
        """Drop every kept answer: after an action, the next poll shows its effect."""
        self._cache.clear()

    def _cached(self, key, fn):
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        pending = self._asking.get(key)
        if pending is not None:
            return pending.get()
        pending = self._asking[key] = gevent.event.AsyncResult()
        try:
            value = fn()
        except BaseException as e:
            pending.set_exception(e)
            raise
        finally:
            self._asking.pop(key, None)
        self._cache[key] = (time.monotonic(), value)
        pending.set(value)
        return value

    # ------------------------------------------------------------------ pages

    def cluster(self):
        m = self.master
        return self._cached("cluster", lambda: {
            "master": {"id": m.record.id, "env": m.env, "host": m.record.host, "port": m.port,
                       "baseDir": m.base_dir, "ready": m.ready.is_set(),
                       "acting": m.acting()},
            "servers": m.control.verb_list({}),
            "time": time.time()})

    def routes(self):
        rows = []
        for answer in self._reports("routes", {"routes": True}):
            for row in answer.get("routes") or ():
                rows.append(dict(row, server=answer["id"], serverType=answer.get("serverType")))
        return {"routes": rows, "time": time.time()}

    def rpc(self):
        rows = []
        for answer in self._reports("rpc", {"rpc": True}):
            for row in answer.get("rpc") or ():
                rows.append(dict(row, server=answer["id"], serverType=answer.get("serverType")))
        return {"calls": rows, "time": time.time()}

    def users(self):
        users, total = [], 0
        frontends = [sid for sid, member in self.master.registry.members.items()
                     if member.record.get("frontend")]
        for answer in self._reports("users", {"users": MAX_USERS}, frontends):
            total += int(answer.get("usersTotal") or 0)
            users.extend(answer.get("users") or ())
        users.sort(key=lambda u: (u.get("loginTime") or 0), reverse=True)
        return {"users": users[:MAX_USERS], "total": total, "time": time.time()}

    def logs(self, lines=LOG_LINES):
        lines = max(1, min(int(lines), reports.MAX_LOG_LINES))
        master_log = str(runstate.log_dir(self.master.base_dir) / "master.log")
        out = {self.master.record.id: reports.tail_lines(master_log, lines)}
        for answer in self._reports("log%d" % lines, {"log": lines}):
            out[answer["id"]] = answer.get("log") or []
        return {"logs": out, "time": time.time()}

    # ------------------------------------------------------------------ asking the servers

    def _reports(self, key, args, ids=None):
        """Every registered server's answer to ``report args`` (those that answer in time)."""
        def ask_all():
            ids_now = sorted(self.master.registry.members) if ids is None else sorted(ids)
            answers = {}
            jobs = [gevent.spawn(self._ask, sid, args, answers) for sid in ids_now]
            gevent.joinall(jobs, timeout=REPORT_TIMEOUT + 1)
            return [answers[sid] for sid in ids_now if sid in answers]
        return self._cached(("report", key, tuple(ids) if ids is not None else None), ask_all)

    def _ask(self, sid, args, out):
        try:
            answer = self.master.command(sid, wire.CMD_REPORT, args, timeout=REPORT_TIMEOUT)
        except ZpomeloError as e:
            logger.debug("report from %s: %s", sid, e)
            return
        if isinstance(answer, dict) and answer.get("id") == sid:
            out[sid] = answer
