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
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                        s.sendall(b"PING\r\n")
                        if s.recv(16).startswith(b"+PONG"):
                            self.port = port
                            return self
                except OSError:
                    time.sleep(0.01)  # a subprocess starting: nothing to wait on but its port
            self.stop()
            if self.port:
                break
        raise RuntimeError("redis-server did not start (see %s/redis.log)" % self.directory)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
