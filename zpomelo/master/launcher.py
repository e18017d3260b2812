"""How the master reaches a server's host: a local child process, or ssh (Pomelo's way).

A server whose host is the master's (or loopback, or listed in master.json ``localHosts``) runs as
a local child. Any other server runs as ``ssh [options] <host> "cd <dir> && exec <python> -m
zpomelo.server ..."``: the ssh client is the master's child, its exit a hint that the server
ended (the remote command's exit code comes back through it). Everything else the master does to
a server goes through the server's control channel; this module only starts processes and, as a
last resort, runs ``kill -<SIG> <pid>`` on the server's host (through ssh when it is remote),
guarded so a reused pid is never hit.
"""
import json
import logging
import os
import re
import shlex
import sys

from gevent import subprocess

logger = logging.getLogger(__name__)

DEFAULT_SERVER_COMMAND = (sys.executable, "-m", "zpomelo.server")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::")
# ssh never waits for a password or a host-key question: a master has nobody to answer them.
DEFAULT_SSH_OPTIONS = ("-o", "BatchMode=yes")
HOST_COMMAND_TIMEOUT = 15.0
PID_LINE = "zpomelo-server-pid"     # the first line a remote server's shell prints


def child_env():
    """os.environ, with zpomelo importable in children even when it is not installed
    (a source checkout run through bin/zpomelo or tests)."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([root] + paths)
    return env


class HostAccess:
    """Starts servers and runs last-resort kills, locally or over ssh (settings from
    master.json, overridden per server record)."""

    def __init__(self, base_dir, env, master_record, server_command=None):
        self.base_dir = str(base_dir)
        self.env = env
        self.master_extra = dict(master_record.extra)
        self.local_hosts = {h.lower() for h in LOOPBACK_NAMES}
        self.local_hosts.add(master_record.host.lower())
        self.local_hosts.update(h.lower() for h in self.master_extra.get("localHosts") or ())
        self.server_command = list(server_command or DEFAULT_SERVER_COMMAND)

    # ------------------------------------------------------------------ where a server runs

    def ssh_host(self, record):
        return record.get("sshHost") or record.get("host")

    def is_local(self, record):
        return str(self.ssh_host(record)).lower() in self.local_hosts

    def remote_dir(self, record):
        return record.get("remoteDir") or self.master_extra.get("remoteDir") or self.base_dir

    def remote_python(self, record):
        return (record.get("remotePython") or self.master_extra.get("remotePython")
                or self.server_command[0])

    def ssh_settings(self, record):
        merged = dict(self.master_extra.get("ssh") or {})
        merged.update(record.get("ssh") or {})
        return merged

    def ssh_argv(self, record):
        """The ssh client command that reaches the server's host (without the remote command)."""
        s = self.ssh_settings(record)
        argv = shlex.split(s["command"]) if s.get("command") else ["ssh"]
        argv += list(s["options"]) if s.get("options") is not None else list(DEFAULT_SSH_OPTIONS)
        if s.get("port"):
            argv += ["-p", str(s["port"])]
        if s.get("identity"):
            argv += ["-i", str(s["identity"])]
        if s.get("user"):
            argv += ["-l", str(s["user"])]
        return argv + [str(self.ssh_host(record))]

    # ------------------------------------------------------------------ starting

    def server_args(self, record, configured, base_dir, master_endpoint, log_dir):
        """`python [args] -m zpomelo.server --dir ... --id ...` for one server."""
        rest = self.server_command[1:]
        argv = [*record.get("args", ()), *rest, "--dir", base_dir, "--env", self.env,
                "--id", record["id"], "--master", master_endpoint, "--log-dir", log_dir]
        if not configured:
            argv += ["--record", json.dumps(record)]
        return argv

    def spawn(self, record, configured, master_endpoint, log_path):
        """Start one server; returns (Popen, pid of the server or None when remote).

        Output goes to log_path (for a remote server: what its ssh session prints, i.e. the
        server's fatal errors; its own log stays on its host). Raises OSError.
        """
        if self.is_local(record):
            argv = [self.server_command[0]] + self.server_args(
                record, configured, self.base_dir, master_endpoint,
                os.path.join(self.base_dir, "logs"))
        else:
            remote_dir = self.remote_dir(record)
            server = [self.remote_python(record)] + self.server_args(
                record, configured, remote_dir, master_endpoint,
                remote_dir.rstrip("/") + "/logs")
            if record.get("cpu") is not None:
                server = ["taskset", "-c", str(record["cpu"])] + server
            # the shell prints its pid and becomes the server (exec): that pid is the server's
            remote = "cd %s && echo %s $$ && exec %s" % (
                shlex.quote(remote_dir), PID_LINE, " ".join(shlex.quote(a) for a in server))
            argv = self.ssh_argv(record) + [remote]
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(argv, cwd=self.base_dir, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, start_new_session=True,
                                     close_fds=True, env=child_env())
        logger.debug("server %s command: %s", record["id"], argv)
        return popen, (popen.pid if self.is_local(record) else None)

    # ------------------------------------------------------------------ last resort

    def signal_server(self, record, pid, signame="KILL"):
        """``kill -<signame> <pid>`` on the server's host, only if that pid still runs the server
        (its command line holds ``--id <id>``). Returns True when the kill was issued."""
        if not pid:
            return False
        needle = "--id %s " % record["id"]
        script = ("tr '\\0' ' ' < /proc/{pid}/cmdline 2>/dev/null | grep -qF -- {needle} "
                  "&& kill -{sig} {pid}").format(pid=int(pid), needle=shlex.quote(needle),
                                                 sig=signame)
        code, output = self.run_on_host(record, script)
        if code != 0:
            logger.info("server %s: kill -%s %s on %s did nothing (gone already?) %s",
                        record["id"], signame, pid, self.ssh_host(record), output.strip())
        return code == 0

    def run_on_host(self, record, script, timeout=HOST_COMMAND_TIMEOUT):
        """Run a shell script on the server's host; (exit code, output). Never raises."""
        argv = ["sh", "-c", script] if self.is_local(record) else self.ssh_argv(record) + [script]
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            logger.warning("cannot run a command on %s: %s", self.ssh_host(record), e)
            return -1, str(e)
        return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")


def read_tail(path, size):
    """The last ``size`` bytes of a log file as text, or None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def remote_pid_from(log_path):
    """The pid a remote server's shell printed (the last one in its ssh log), or None."""
    text = read_tail(log_path, 65536)
    if text is None:
        return None
    found = re.findall(r"^%s (\d+)$" % PID_LINE, text, re.M)
    return int(found[-1]) if found else None
