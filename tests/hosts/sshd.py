"""A real OpenSSH server for tests: Debian's sshd on a free loopback port, keys in a temp dir.

Reusable by any test package: ``with SshServer(tmp_dir) as sshd: sshd.client_options()``.
The server listens on every given loopback address (127.0.0.2, 127.0.0.3 ... act as extra
"hosts" of one machine), accepts only the generated user key, and is stopped by its pid.
"""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"
READY_TIMEOUT = 10.0


def free_port(host="127.0.0.1"):
    """A port free on every address of 127.0.0.0/8 we use (bound on 127.0.0.1, read back)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _keygen(path, comment):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f",
                    str(path)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class SshServer:
    def __init__(self, directory, addresses=("127.0.0.1", "127.0.0.2", "127.0.0.3")):
        self.dir = Path(directory)
        self.addresses = tuple(addresses)
        self.port = None
        self.proc = None
        self.user_key = self.dir / "id_user"
        self.log = self.dir / "sshd.log"

    def start(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        host_key = self.dir / "host_key"
        _keygen(host_key, "zpomelo-test-host")
        _keygen(self.user_key, "zpomelo-test-user")
        authorized = self.dir / "authorized_keys"
        authorized.write_text((self.dir / "id_user.pub").read_text())
        os.chmod(authorized, 0o600)
        self.port = free_port()
        lines = ["Port %d" % self.port]
        lines += ["ListenAddress %s" % a for a in self.addresses]
        lines += ["HostKey %s" % host_key, "AuthorizedKeysFile %s" % authorized,
                  "PidFile none", "StrictModes no", "UsePAM no", "PasswordAuthentication no",
                  "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
                  "PermitRootLogin prohibit-password", "LogLevel ERROR", "MaxStartups 100",
                  "MaxSessions 100", "AcceptEnv ZPOMELO_*"]
        config = self.dir / "sshd_config"
        config.write_text("\n".join(lines) + "\n")
        # sshd insists on this directory for privilege separation
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        log = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        finally:
            log.close()
        self._wait_ready()
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sshd exited with %s: %s"
                                   % (self.proc.returncode, self.log.read_text()))
            result = subprocess.run(self.ssh_argv(self.addresses[-1]) + ["true"],
                                    stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
            if result.returncode == 0:
                return
            time.sleep(0.05)    # polling a starting daemon: no event to wait on
        raise RuntimeError("sshd on port %s did not accept a login within %.0f s: %s"
                           % (self.port, READY_TIMEOUT, self.log.read_text()))

    def client_options(self):
        """ssh options (after the command name) that log in to this server with the test key."""
        return ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-i", str(self.user_key),
                "-p", str(self.port)]

    def ssh_argv(self, host):
        return ["ssh", *self.client_options(), host]

    def master_ssh_config(self):
        """The "ssh" object of master.json for a cluster whose remote hosts are this server."""
        return {"port": self.port, "identity": str(self.user_key),
                "options": ["-o", "StrictHostKeyChecking=no", "-o",
                            "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                            "-o", "LogLevel=ERROR"]}

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
