"""A real redis-server for the store tests, started on a free loopback port and stopped by pid.

Its own module (not conftest.py) so test files import it by a name no other directory uses.
"""
import os
import shutil
import socket
import subprocess
import time

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers_ping(proc, port, timeout):
    """True once the server ``proc`` started answers PING on ``port``; False if it exits or
    ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith((b"+PONG", b"-NOAUTH")):  # up (NOAUTH: with a password)
                    return True
        except OSError:
            time.sleep(0.01)  # a subprocess starting: nothing to wait on but its port
    return False


class RedisServer:
    """A redis-server we start (AOF on) and stop by pid; ``kill()`` is kill -9, ``start()`` again reuses the dir."""

    def __init__(self, directory, appendfsync="always", extra=()):
        """extra: more redis-server arguments, e.g. ("--replicaof", "127.0.0.1", "6379")."""
        self.directory = str(directory)
        self.appendfsync = appendfsync
        self.extra = list(extra)
        self.port = None
        self.proc = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self, timeout=10.0):
        for _ in range(5):
            port = self.port or free_port()
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "yes", "--appendfsync", self.appendfsync, "--dir", self.directory,
                 "--daemonize", "no", "--logfile", os.path.join(self.directory, "redis.log")]
                + self.extra,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if _answers_ping(self.proc, port, timeout):
                self.port = port
                return self
            self.stop()
            if self.port:
                break
        raise RuntimeError("redis-server did not start (see %s/redis.log)" % self.directory)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        _stop(self.proc)


def start_primary_and_replica(directory):
    """A primary (AOF everysec) and a replica of it, in sync: (primary, replica)."""
    primary, replicas = start_primary_and_replicas(directory, 1)
    return primary, replicas[0]


def start_primary_and_replicas(directory, count):
    """A primary (AOF everysec) and ``count`` replicas of it, in sync: (primary, [replicas])."""
    import redis
    from zpomelo.testing import wait_until
    # a replica's full sync starts at once, not after the default 5 s delay (on the replicas too:
    # one may be promoted and have the old primary sync from it)
    no_delay = ["--repl-diskless-sync-delay", "0"]
    primary = RedisServer(os.path.join(str(directory), "primary"), appendfsync="everysec",
                          extra=no_delay)
    os.makedirs(primary.directory)
    primary.start()
    replicas = []
    for n in range(count):
        replica = RedisServer(os.path.join(str(directory), "replica%d" % n), appendfsync="everysec",
                              extra=no_delay + ["--replicaof", "127.0.0.1", str(primary.port)])
        os.makedirs(replica.directory)
        replicas.append(replica.start())
    for replica in replicas:
        link = redis.Redis.from_url(replica.url)
        wait_until(lambda: link.info("replication").get("master_link_status") == "up",
                   20, message="the replica to sync")
        link.close()
    # After a diskless sync the primary streams writes to a replica only once the replica
    # acknowledged the snapshot (its periodic ACK, up to a second later); until then a write is
    # buffered on the primary and a kill -9 loses it. A write confirmed by WAIT shows the stream
    # flows (WAIT asks the replicas for their ACK at once).
    link = redis.Redis.from_url(primary.url)
    link.set("replication-check", 1)
    wait_until(lambda: link.wait(count, 1000) == count, 20, message="the replicas to stream writes")
    link.delete("replication-check")
    link.close()
    return primary, replicas


class SentinelServer:
    """One Redis Sentinel (``redis-server --sentinel``) monitoring ``master`` at ``master_port``
    with a quorum of one, quick to act: the primary is down after ``down_after_ms`` without an
    answer, and it fails over at once."""

    def __init__(self, directory, master, master_port, down_after_ms=1000, password=None):
        self.directory = str(directory)
        self.password = password
        self.master = master
        self.master_port = master_port
        self.down_after_ms = down_after_ms
        self.port = None
        self.proc = None

    def start(self, timeout=10.0):
        os.makedirs(self.directory, exist_ok=True)
        self.port = free_port()
        config = os.path.join(self.directory, "sentinel.conf")   # Sentinel rewrites it: its own file
        with open(config, "w") as f:
            f.write("\n".join([
                "port %d" % self.port, "bind 127.0.0.1", "daemonize no", "dir %s" % self.directory,
                "logfile %s" % os.path.join(self.directory, "sentinel.log"),
                "sentinel resolve-hostnames no",
                "sentinel monitor %s 127.0.0.1 %d 1" % (self.master, self.master_port),
                "sentinel down-after-milliseconds %s %d" % (self.master, self.down_after_ms),
                "sentinel failover-timeout %s 5000" % self.master,
                "sentinel parallel-syncs %s 1" % self.master]
                + (["requirepass %s" % self.password] if self.password else []) + [""]))
        self.proc = subprocess.Popen([REDIS_SERVER, config, "--sentinel"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _answers_ping(self.proc, self.port, timeout):
            self.stop()
            raise RuntimeError("redis sentinel did not start (see %s/sentinel.log)" % self.directory)
        return self

    def stop(self):
        _stop(self.proc)


def _stop(proc):
    """SIGTERM (a clean shutdown), SIGKILL if it takes more than 10 s."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
