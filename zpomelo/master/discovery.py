"""Finding the current master through ZooKeeper: servers follow it, the CLI looks it up.

With masterHA, the leader record at <path>/leader says where the master is and its epoch
(ha_config.py). A server's `MasterFollower` keeps a data watch on it and points the agent at every
new leader (the agent re-registers there, and from then on refuses messages with an older epoch).
While ZooKeeper is unreachable a server keeps its master and its membership and keeps serving.
Without masterHA, `start_agent` is exactly the old path: the agent talks to --master.
"""
import logging
import time

import gevent
import gevent.event

from zpomelo.errors import ZpomeloError
from zpomelo.master import ha_config

logger = logging.getLogger(__name__)


def start_agent(base_dir, env, master_endpoint, record, on_add, on_remove, on_command,
                timeout=10.0, keys=None):
    """Register with the master (found through ZooKeeper with masterHA); -> (agent, members)."""
    from zpomelo.master.agent import MasterAgent
    cfg = ha_config.load(base_dir, env)
    if cfg is None:
        agent = MasterAgent(master_endpoint, record, on_add, on_remove, on_command, keys=keys)
        return agent, agent.start(timeout)
    follower = MasterFollower(cfg, record["id"])
    leader = follower.start(timeout)
    agent = MasterAgent(leader["endpoint"], record, on_add, on_remove, on_command,
                        epoch=leader["epoch"], keys=keys)
    try:
        members = agent.start(timeout)
    except ZpomeloError:
        follower.close()
        raise
    follower.attach(agent)
    return agent, members


class MasterFollower:
    """Watches the leader record and points an agent at each new leader (gevent)."""

    def __init__(self, cfg, server_id):
        self.cfg = cfg
        self.server_id = server_id
        self.leader = None
        self._agent = None
        self._client = None
        self._have_leader = gevent.event.Event()

    def start(self, timeout):
        """Connect and return the current leader record; waits up to timeout for one."""
        from zpomelo.master.ha import kazoo_client, start_client
        self._client = kazoo_client(self.cfg)
        start_client(self._client, self.cfg, timeout)
        self._client.DataWatch(self.cfg.leader_path, self._on_data)
        if not self._have_leader.wait(timeout):
            self.close()
            raise ZpomeloError("server %s: no master leads in ZooKeeper at %s%s after %.0f s; "
                               "start the cluster with zpomelo start"
                               % (self.server_id, self.cfg.hosts, self.cfg.leader_path, timeout))
        return self.leader

    def _on_data(self, data, _stat):
        # kazoo's callback greenlet: must not block (agent.follow only schedules work)
        if self._client is None:
            return False
        record = ha_config.decode_leader(data)
        if not ha_config.is_serving(record):
            return True
        if self.leader is not None and record["epoch"] < self.leader["epoch"]:
            return True
        changed = self.leader is None or record["epoch"] != self.leader["epoch"]
        self.leader = record
        self._have_leader.set()
        if changed and self._agent is not None:
            logger.info("server %s: the master is now %s at %s (epoch %d)", self.server_id,
                        record.get("id"), record["endpoint"], record["epoch"])
            self._agent.follow(record["endpoint"], record["epoch"])
        return True

    def attach(self, agent):
        """From now on the agent follows the leader; catch up with a change seen meanwhile."""
        self._agent = agent
        agent.on_close(self.close)
        if self.leader is not None:
            agent.follow(self.leader["endpoint"], self.leader["epoch"])

    def close(self):
        client, self._client = self._client, None
        if client is not None:
            try:
                client.stop()
                client.close()
            except Exception as e:
                logger.debug("closing the ZooKeeper client: %s", e)


def find_leader(cfg, timeout=5.0, newer_than=None):
    """The leader record (a dict) for the CLI, which does not run gevent; waits up to timeout
    for a running leader (with an epoch above newer_than, when given). Raises ZpomeloError."""
    from zpomelo.master.ha import kazoo_client, start_client
    client = kazoo_client(cfg, gevent_handler=False)
    start_client(client, cfg, min(timeout, 5.0) if timeout else 5.0)
    try:
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                data, _stat = client.get(cfg.leader_path)
            except Exception as e:  # NoNodeError: nothing ever led; ConnectionLoss: try again
                data = None
                logger.debug("reading the leader record: %s", e)
            last = ha_config.decode_leader(data)
            if ha_config.is_serving(last) \
                    and (newer_than is None or last["epoch"] > newer_than) \
                    and _contenders(client, cfg):
                return last
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
    finally:
        client.stop()
        client.close()
    if last and last.get("state") == ha_config.STOPPED:
        raise ZpomeloError("the cluster is stopped (ZooKeeper %s%s); start it with zpomelo start"
                           % (cfg.hosts, cfg.leader_path))
    raise ZpomeloError("no master leads the cluster (ZooKeeper %s%s)%s; start it with "
                       "zpomelo start, or a standby with zpomelo masterha"
                       % (cfg.hosts, cfg.leader_path,
                          ": the last leader was %s at %s (epoch %s)"
                          % (last.get("id"), last.get("endpoint"), last.get("epoch"))
                          if last else ""))


def _contenders(client, cfg):
    """True when some master is in the election (a record alone may be a dead leader's)."""
    try:
        return bool(client.get_children(cfg.election_path))
    except Exception:
        return False
