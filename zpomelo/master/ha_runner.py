"""A master process under masterHA: stand for election, lead while elected, stand again after.

The primary (`zpomelo start`) starts the cluster when it wins and no cluster runs; a standby
(`zpomelo masterha`) waits, and when elected takes the running cluster over: it binds its own
port, spawns nothing, adopts every server that re-registers (servers follow the leader record in
ZooKeeper) and auto-restarts the ones the last leader ran that died meanwhile. A leader that
loses its ZooKeeper session steps down: it stops watching and commanding (servers keep running),
forgets the cluster and stands again as a standby. When the cluster is stopped on purpose
(`zpomelo stop`) the leader marks the record stopped and the standbys exit.
"""
import logging
import os

import gevent

from zpomelo.errors import ZpomeloError
from zpomelo.master import ha_config
from zpomelo.master.ha import Candidate, ClusterStopped
from zpomelo.master.master import Master

logger = logging.getLogger(__name__)


def run_ha_master(base_dir, env, cfg, record, standby, only_type, only_id, ready,
                  start_timeout, server_command, install_signals):
    """Run one HA master until the cluster stops; returns the process exit code."""
    candidate = Candidate(cfg, record)
    candidate.set_standby(standby)
    try:
        candidate.start()
    except ZpomeloError as e:
        logger.error("%s", e)
        ready({"ok": False, "error": str(e)})
        return 2
    state = {"master": None, "stopping": None}

    def on_signal(graceful):
        master = state["master"]
        if master is not None and candidate.may_act():
            if state["stopping"] is not None:
                graceful = False
            state["stopping"] = graceful
            logger.info("signal received: %s stop of the cluster",
                        "graceful" if graceful else "hard")
            gevent.spawn(master.shutdown, graceful)
        else:           # a standby (or a master that stepped down): just leave the election
            logger.info("signal received: master %s leaves the election", record.id)
            state["stopping"] = False
            candidate.close()
            os._exit(0)

    install_signals(on_signal)
    first_term = True
    try:
        while True:
            if standby and first_term:
                current = candidate.current_record()
                if not current or current.get("state") != ha_config.RUNNING:
                    why = ("no running cluster to take over (%s); start it with zpomelo start"
                           % ("it was stopped" if current else "none was ever started"))
                    logger.error("standby master %s: %s", record.id, why)
                    ready({"ok": False, "error": why})
                    return 1
            if standby or not first_term:
                leader = candidate.contenders()
                ready({"ok": True, "standby": True, "pid": os.getpid(), "id": record.id,
                       "host": record.host, "port": record.port,
                       "leader": leader[0].get("id") if leader else None})
                ready = _ignore
            try:
                candidate.campaign()
            except ClusterStopped as e:
                logger.info("master %s exits: %s", record.id, e)
                ready({"ok": False, "error": str(e)})
                return 0
            # the primary's first term starts the cluster (adopting what still runs, like a
            # restarted master without HA); any other term takes a running cluster over
            code = _lead(base_dir, env, record, candidate, standby, only_type, only_id, ready,
                         start_timeout, server_command, state)
            ready = _ignore
            first_term = False
            if code is not None:
                return code
            candidate.resign()
            standby = True      # elected again later, this master takes the cluster over
            candidate.set_standby(True)
    finally:
        candidate.close()


def _lead(base_dir, env, record, candidate, takeover, only_type, only_id, ready,
          start_timeout, server_command, state):
    """One term as leader. Returns an exit code when the process should end, None after a
    step-down (stand again)."""
    try:
        master = Master(base_dir, env, only_type, only_id, server_command, record=record,
                        ha=candidate, takeover=takeover)
        master.start()
    except ZpomeloError as e:
        logger.error("%s", e)
        ready({"ok": False, "error": str(e)})
        return 2
    state["master"] = master
    if candidate.port != master.port:       # port 0 in master.json: tell ZooKeeper the real one
        candidate.port = master.port
        candidate.refresh_record()
    logger.info("master %s leads the cluster (epoch %d) on %s%s", record.id, candidate.epoch,
                master.endpoint, ", taking over the running servers" if takeover else "")
    gevent.wait([master.ready, master.done, candidate.lost], count=1, timeout=start_timeout)
    if candidate.lost.is_set():
        return _step_down(master, candidate, state)
    code = master.report_start(ready, start_timeout, epoch=candidate.epoch)
    if code is not None:
        return code
    gevent.wait([master.done, candidate.lost], count=1)
    if master.done.is_set():
        master.close()
        logger.info("master exits")
        return 0
    return _step_down(master, candidate, state)


def _step_down(master, candidate, state):
    logger.warning("master %s stepped down (%s): it leaves the servers running and stands again "
                   "as a standby", master.record.id, candidate.lost_reason)
    state["master"] = None
    master.close()
    return None


def _ignore(_info):
    pass
