"""A real standalone ZooKeeper for tests: Debian's `zookeeper` package, on a free loopback port.

`ZooKeeperServer(tmp_dir).start()` writes a zoo.cfg (client port bound to 127.0.0.1, data in the
temp dir, admin server off, ticks of 500 ms so sessions may be as short as 1 s), runs
QuorumPeerMain with java and returns once `srvr` answers. `stop()` kills it by pid (SIGKILL: the
test wants ZooKeeper gone at once); `restart()` starts it again on the same port with the same data,
so sessions that reconnect in time survive, as they do in production. Use the `zookeeper` fixture
(tests/conftest.py) or the class directly.
"""
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
START_TIMEOUT = 30.0

LOG4J = """log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File={log}
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d %p [%t] %c: %m%n
"""


def available():
    """Why ZooKeeper cannot run here, or None when it can."""
    if not ZOOKEEPER_JAR.exists():
        return "Debian's zookeeper package is not installed (bash tests/install-system-deps.sh)"
    if shutil.which("java") is None:
        return "no java on PATH (install Debian's zookeeper package, it brings a JRE)"
    return None


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def four_letter(host, port, word, timeout=1.0):
    """Send a four-letter command (ruok, srvr); the answer as text, or None when nobody answers."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while True:
                data = s.recv(4096)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return None


class ZooKeeperServer:
    def __init__(self, work_dir, port=None, host="127.0.0.1"):
        self.dir = Path(work_dir)
        self.host = host
        self.port = port or free_port(host)
        self.proc = None
        self.conf_dir = self.dir / "conf"
        self.data_dir = self.dir / "data"
        self.log_file = self.dir / "zookeeper.log"

    @property
    def hosts(self):
        """The connection string kazoo and master.json take."""
        return "%s:%d" % (self.host, self.port)

    def _write_config(self):
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "zoo.cfg").write_text("\n".join([
            "tickTime=500", "minSessionTimeout=1000", "maxSessionTimeout=60000",
            "initLimit=10", "syncLimit=5",
            "dataDir=%s" % self.data_dir,
            "clientPort=%d" % self.port, "clientPortAddress=%s" % self.host,
            "admin.enableServer=false", "4lw.commands.whitelist=ruok,srvr",
            "maxClientCnxns=0", ""]))
        (self.conf_dir / "log4j.properties").write_text(LOG4J.format(log=self.log_file))

    def start(self, timeout=START_TIMEOUT):
        why = available()
        if why:
            raise RuntimeError(why)
        self._write_config()
        argv = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.log.dir=%s" % self.dir,
                "-Dlog4j.configuration=file:%s" % (self.conf_dir / "log4j.properties"),
                "-cp", "%s:%s" % (self.conf_dir, ZOOKEEPER_JAR),
                MAIN_CLASS, str(self.conf_dir / "zoo.cfg")]
        with open(self.dir / "zookeeper.out", "ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            answer = four_letter(self.host, self.port, "srvr")
            if answer and "Mode:" in answer:
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("ZooKeeper exited with code %s; see %s"
                                   % (self.proc.returncode, self.dir / "zookeeper.out"))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("ZooKeeper did not answer srvr on %s within %.0f s; see %s"
                                   % (self.hosts, timeout, self.dir / "zookeeper.out"))
            time.sleep(0.05)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, timeout=START_TIMEOUT):
        self.stop()
        return self.start(timeout)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
