"""One master's part in the master election on ZooKeeper (the [ha] extra: kazoo, gevent handler).

Why it is built this way (Pomelo 0.5's masterHA lost servers and could run two masters):
- The election is kazoo's Lock recipe: ephemeral sequential candidate nodes under
  <path>/election, ordered by their sequence number as a number, each candidate watching its
  predecessor. The holder of the lowest node leads.
- The leader record at <path>/leader ({id, host, port, endpoint, epoch, pid, state}) is written
  in one ZooKeeper transaction with a check that our candidate node still exists, and with the
  record's version: a master whose session has expired (its node is gone) cannot write it, and
  two writers cannot both win. The epoch is the previous record's epoch + 1 (the record is never
  deleted), so it only grows; servers ignore master messages carrying an older one.
- Acting needs a lease: SUSPENDED (connection lost) stops the leader at once; besides, the leader
  acts only until `0.8 x sessionTimeout` after the start of its last successful ZooKeeper round
  trip. ZooKeeper expires a session no earlier than sessionTimeout after it last heard from it, so
  while the lease holds nobody else can have been elected. A master frozen (SIGSTOP) past the
  lease finds it expired when it wakes and does nothing before ZooKeeper answers, which tells it
  the session is LOST: it steps down (`lost` is set) and may stand again as a standby.
"""
import logging
import os
import socket
import time

import gevent
import gevent.event

from zpomelo.errors import ZpomeloError
from zpomelo.master import ha_config

logger = logging.getLogger(__name__)

LEASE_FRACTION = 0.8        # of the session timeout: how long one ZooKeeper round trip lets us act
RENEW_FRACTION = 0.25       # of the session timeout: how often the leader renews its lease
ATTEMPTS_PER_SESSION = 3    # a connection attempt may take at most this fraction of the session
CONNECT_TIMEOUT = 10.0


class HAUnavailable(ZpomeloError):
    """kazoo is not installed or ZooKeeper cannot be reached."""


def kazoo_client(cfg, gevent_handler=True):
    """A started-later KazooClient for cfg; a clear error when the [ha] extra is missing."""
    try:
        from kazoo.client import KazooClient
    except ImportError:
        raise HAUnavailable("masterHA is enabled in config/master.json but kazoo is not "
                            "installed: pip install 'zpomelo[ha]'") from None
    from kazoo.retry import KazooRetry
    if gevent_handler:
        from kazoo.handlers.gevent import SequentialGeventHandler
        handler = SequentialGeventHandler()
    else:
        from kazoo.handlers.threading import SequentialThreadingHandler
        handler = SequentialThreadingHandler()
    # reconnect forever, quickly: a ZooKeeper restart must not leave a master or server behind
    retry = KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0, sleep_func=handler.sleep_func)
    try:
        return KazooClient(hosts=hosts_for_attempts(cfg.hosts), timeout=cfg.session_timeout,
                           handler=handler, connection_retry=retry)
    except Exception as e:      # e.g. a malformed connection string
        raise HAUnavailable("masterHA.zookeeper %r in config/master.json: %s"
                            % (cfg.hosts, e)) from None


def hosts_for_attempts(hosts):
    """The connection string with each server listed again until there are at least
    ATTEMPTS_PER_SESSION entries (a chroot suffix kept once).

    kazoo gives one connection attempt sessionTimeout / (number of entries) to be answered. With
    one ZooKeeper that is the whole session: an attempt caught by a ZooKeeper that accepts but
    does not answer yet (one restarting on a loaded machine) hung for the session timeout, while
    the restarted ZooKeeper counted down the session it had restored, which expired before the
    next attempt: the leader stepped down and a standby took over. Repeating the entries bounds
    an attempt to a third of the session, so the next one comes in time."""
    servers, slash, chroot = hosts.partition("/")
    entries = [h.strip() for h in servers.split(",") if h.strip()]
    if not entries:
        return hosts
    repeat = -(-ATTEMPTS_PER_SESSION // len(entries))
    return ",".join(entries * repeat) + slash + chroot


def start_client(client, cfg, timeout=CONNECT_TIMEOUT):
    try:
        client.start(timeout=timeout)
    except (Exception, client.handler.timeout_exception) as e:   # gevent's is no Exception
        try:
            client.stop()
            client.close()
        except Exception:
            pass
        raise HAUnavailable("cannot reach ZooKeeper at %s within %.0f s (%s: %s); start "
                            "ZooKeeper or fix masterHA.zookeeper in config/master.json"
                            % (cfg.hosts, timeout, type(e).__name__, e)) from None


class Candidate:
    """A master standing for election; once elected, the guard of everything it does."""

    def __init__(self, cfg, record, endpoint_host=None):
        self.cfg = cfg
        self.record = record                # MasterRecord: id, host, port
        self.port = record.port
        self.epoch = None                   # set while leading
        self.previous = None                # the leader record we replaced
        self.lost = gevent.event.Event()    # set when leadership is lost (step down)
        self.lost_reason = None
        self._client = None
        self._lock = None
        self._connected = False
        self._lease_until = 0.0
        self._renewer = None
        self._leader_version = None
        self._stopped_watch = gevent.event.Event()   # the cluster was stopped: standbys exit
        self._standby_only = False

    # ------------------------------------------------------------------ connection

    def start(self, timeout=CONNECT_TIMEOUT):
        self._client = kazoo_client(self.cfg)
        self._client.add_listener(self._on_state)
        start_client(self._client, self.cfg, timeout)
        self._connected = True
        self._client.ensure_path(self.cfg.election_path)
        self._client.DataWatch(self.cfg.leader_path, self._on_leader_data)
        return self

    def _on_leader_data(self, data, _stat):
        # kazoo's callback greenlet: never block here
        record = ha_config.decode_leader(data)
        if record is None:
            return
        if self.epoch is not None and record["epoch"] > self.epoch:
            self._step_down("%s leads with epoch %d" % (record.get("id"), record["epoch"]))
        elif self.epoch is None and self._standby_only and record.get("state") == ha_config.STOPPED:
            self._stopped_watch.set()
            if self._lock is not None:
                self._lock.cancel()

    def _on_state(self, state):
        # runs in kazoo's connection greenlet: never block here
        from kazoo.client import KazooState
        if state == KazooState.CONNECTED:
            self._connected = True
            if self.epoch is not None:
                logger.info("ZooKeeper connection back: leader %s may act again once its lease "
                            "is renewed", self.record.id)
                gevent.spawn(self._renew_once)
        elif state == KazooState.SUSPENDED:
            self._connected = False
            if self.epoch is not None:
                logger.warning("ZooKeeper connection suspended: leader %s stops acting until it "
                               "is back", self.record.id)
        elif state == KazooState.LOST:
            self._connected = False
            if self.epoch is not None:
                self._step_down("its ZooKeeper session expired")

    # ------------------------------------------------------------------ the election

    def identifier(self):
        return ha_config.encode_leader({
            "id": self.record.id, "host": self.record.host, "port": self.port,
            "pid": os.getpid(), "hostname": socket.gethostname(), "epoch": 0}).decode()

    def campaign(self, port=None):
        """Block this greenlet until elected; then write the leader record. Returns the epoch.

        Raises ClusterStopped when the cluster was stopped while we waited (a standby exits)."""
        if port is not None:
            self.port = port
        self.lost.clear()
        self.lost_reason = None
        while True:
            if self._stopped_watch.is_set():
                raise ClusterStopped("the cluster was stopped (zpomelo stop)")
            self._lock = self._client.Lock(self.cfg.election_path, self.identifier())
            try:
                acquired = self._lock.acquire()
            except Exception as e:
                if self._stopped_watch.is_set():
                    raise ClusterStopped("the cluster was stopped (zpomelo stop)") from None
                logger.warning("master %s: the election failed (%s: %s); standing again",
                               self.record.id, type(e).__name__, e)
                gevent.sleep(0.5)
                continue
            if not acquired:
                continue
            epoch = self._claim()
            if epoch is not None:
                return epoch
            self._release()

    def _claim(self):
        """Write the leader record with the next epoch, fenced by our candidate node."""
        from kazoo.exceptions import NoNodeError
        node = "%s/%s" % (self._lock.path, self._lock.node)
        for _attempt in range(5):
            t0 = time.monotonic()
            try:
                data, stat = self._client.get(self.cfg.leader_path)
            except NoNodeError:
                data, stat = None, None
            previous = ha_config.decode_leader(data)
            if self._standby_only and (previous is None
                                       or previous.get("state") == ha_config.STOPPED):
                self._release()
                raise ClusterStopped("no running cluster to take over (%s); start it with "
                                     "zpomelo start" % ("it was stopped" if previous
                                                        else "none was ever started"))
            epoch = (previous["epoch"] if previous else 0) + 1
            record = self._record(epoch, ha_config.RUNNING)
            txn = self._client.transaction()
            txn.check(node, 0)
            if stat is None:
                txn.create(self.cfg.leader_path, ha_config.encode_leader(record))
            else:
                txn.set_data(self.cfg.leader_path, ha_config.encode_leader(record),
                             version=stat.version)
            results = txn.commit()
            failed = [r for r in results if isinstance(r, Exception)]
            if not failed:
                self.epoch = epoch
                self.previous = previous
                self._leader_version = (stat.version + 1) if stat is not None else 0
                self._lease_until = t0 + LEASE_FRACTION * self.cfg.session_timeout
                self._renewer = gevent.spawn(self._renew_loop)
                logger.info("master %s leads with epoch %d (previous leader: %s)",
                            self.record.id, epoch,
                            "%s, epoch %d" % (previous.get("id"), previous["epoch"])
                            if previous else "none")
                return epoch
            if not self._client.exists(node):
                logger.warning("master %s: lost its candidate node while claiming", self.record.id)
                return None
            gevent.sleep(0.05)      # the record changed under us: read it again
        return None

    def set_standby(self, standby):
        """A standby never starts a stopped cluster: it exits when it finds the record stopped."""
        self._standby_only = standby

    def _record(self, epoch, state):
        return {"id": self.record.id, "host": self.record.host, "port": self.port,
                "endpoint": "tcp://%s:%d" % (self.record.host, self.port), "epoch": epoch,
                "pid": os.getpid(), "hostname": socket.gethostname(), "state": state,
                "since": time.time()}

    # ------------------------------------------------------------------ the lease

    def may_act(self):
        """True while this master leads and its lease holds (see the module docstring)."""
        return (self.epoch is not None and not self.lost.is_set() and self._connected
                and time.monotonic() < self._lease_until)

    def _renew_loop(self):
        while not self.lost.is_set():
            self._renew_once()
            self.lost.wait(RENEW_FRACTION * self.cfg.session_timeout)

    def _renew_once(self):
        if self.epoch is None or self.lost.is_set():
            return
        t0 = time.monotonic()
        # a bounded wait: a request caught in a ZooKeeper outage must not hold the renewals back
        # (the lease would then never come back after the connection does)
        wait = RENEW_FRACTION * self.cfg.session_timeout
        timeout_error = (gevent.Timeout, self._client.handler.timeout_exception)
        try:
            data, stat = self._client.get_async(self.cfg.leader_path).get(timeout=wait)
        except timeout_error:
            logger.info("lease renewal: ZooKeeper did not answer within %.1f s", wait)
            return
        except Exception as e:
            from kazoo.exceptions import NoNodeError, SessionExpiredError
            if isinstance(e, SessionExpiredError):
                self._step_down("its ZooKeeper session expired")
            elif isinstance(e, NoNodeError):
                self._step_down("the leader record was deleted")
            else:
                logger.info("lease renewal failed: %s: %s", type(e).__name__, e)
            return
        record = ha_config.decode_leader(data)
        if record is None or record.get("epoch") != self.epoch or record.get("id") != self.record.id:
            self._step_down("another master leads now (%s)" % (
                "%s, epoch %s" % (record.get("id"), record.get("epoch")) if record else "?"))
            return
        node = "%s/%s" % (self._lock.path, self._lock.node)
        try:
            alive = self._client.exists_async(node).get(timeout=wait) is not None
        except timeout_error:
            logger.info("lease renewal: ZooKeeper did not answer within %.1f s", wait)
            return
        except Exception as e:
            logger.debug("lease renewal failed: %s: %s", type(e).__name__, e)
            return
        if not alive:
            self._step_down("its candidate node is gone")
            return
        self._leader_version = stat.version
        self._lease_until = max(self._lease_until, t0 + LEASE_FRACTION * self.cfg.session_timeout)

    def saw_newer_epoch(self, epoch, who):
        """A server knows a newer epoch than ours: someone else leads; step down now."""
        if self.epoch is not None and isinstance(epoch, int) and epoch > self.epoch:
            self._step_down("%s knows epoch %d, newer than ours (%d)" % (who, epoch, self.epoch))

    def _step_down(self, reason):
        if self.lost.is_set() or self.epoch is None:
            return
        logger.warning("master %s steps down (epoch %d): %s", self.record.id, self.epoch, reason)
        self.lost_reason = reason
        self._lease_until = 0.0
        self.lost.set()

    # ------------------------------------------------------------------ leaving

    def refresh_record(self):
        """Rewrite the leader record (same epoch) after the master bound its real port."""
        self._write_record(ha_config.RUNNING)

    def _write_record(self, state):
        node = "%s/%s" % (self._lock.path, self._lock.node)
        txn = self._client.transaction()
        txn.check(node, 0)
        txn.set_data(self.cfg.leader_path,
                     ha_config.encode_leader(self._record(self.epoch, state)))
        try:
            results = txn.commit()
        except Exception as e:
            logger.warning("cannot write the leader record to ZooKeeper: %s", e)
            return False
        return not any(isinstance(r, Exception) for r in results)

    def record_stopped(self):
        """The cluster is stopped on purpose: mark the record so standbys exit (fenced)."""
        if not self.may_act():
            return False
        return self._write_record(ha_config.STOPPED)

    def resign(self):
        """Give up leadership (or candidacy) and forget the epoch; the client stays connected."""
        if self._renewer is not None:
            self._renewer.kill()
            self._renewer = None
        self.epoch = None
        self._lease_until = 0.0
        self._release()

    def _release(self):
        if self._lock is not None:
            try:
                self._lock.cancel()
                if self._lock.is_acquired:
                    self._lock.release()
            except Exception as e:      # session gone: the ephemeral node went with it
                logger.debug("releasing the election lock: %s", e)
            self._lock = None

    def current_record(self):
        """The leader record as ZooKeeper has it now (a dict), or None."""
        try:
            return ha_config.decode_leader(self._client.get(self.cfg.leader_path)[0])
        except Exception as e:      # NoNodeError: no cluster ever ran here
            logger.debug("reading the leader record: %s", e)
            return None

    def contenders(self):
        """Identifiers (dicts) of every master in the election, leader first."""
        try:
            lock = self._client.Lock(self.cfg.election_path)
            return [ha_config.decode_leader(c.encode()) or {} for c in lock.contenders()]
        except Exception as e:
            logger.debug("cannot list the election's contenders: %s", e)
            return []

    def close(self):
        self.resign()
        if self._client is not None:
            try:
                self._client.stop()
                self._client.close()
            except Exception as e:
                logger.debug("closing the ZooKeeper client: %s", e)
            self._client = None


class ClusterStopped(ZpomeloError):
    """A standby's wait ended because the cluster was stopped on purpose."""
