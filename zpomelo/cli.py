"""The zpomelo command: Pomelo's verbs (init, start; list, add, stop, kill, restart in
cli_admin.py), reload, keys.

Admin verbs find the master through -h/-P, else (masterHA) through ZooKeeper's leader record,
else through the running cluster's state file under logs/ of the project (-d, default the
current directory), else config/master.json, else 127.0.0.1:3005 like Pomelo. Failures print "error: ..." on stderr and exit with code 1.
"""
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

from zpomelo import cli_ha, config
from zpomelo.cli_admin import STOP_WAIT, admin_commands
from zpomelo.errors import ZpomeloError
from zpomelo.master import procinfo, runstate
from zpomelo.master.admin_client import AdminClient
from zpomelo.master.supervisor import child_env
from zpomelo.rpc import security

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3005
DEFAULT_ENV = "development"
TEMPLATE_DIR = Path(__file__).parent / "templates" / "project"
START_WAIT = 90.0           # -D: how long to wait for the master's ready line

CONTEXT = dict(help_option_names=["--help"])


def fail(message, code=1):
    click.echo("error: %s" % message, err=True)
    sys.exit(code)


def project_dir(directory):
    return os.path.abspath(directory or os.getcwd())


def running_master(base_dir, env):
    """The state file's master entry when that master process is alive, else None."""
    master = runstate.load(base_dir, env)["master"]
    pid = master.get("pid")
    if pid and procinfo.is_alive(pid) and "zpomelo" in " ".join(procinfo.cmdline(pid)):
        return master
    return None


def running_envs(base_dir):
    """Environments of this project whose master is running (from logs/.cluster-<env>.json)."""
    found = []
    for path in sorted(runstate.log_dir(base_dir).glob(".cluster-*.json")):
        env = path.name[len(".cluster-"):-len(".json")]
        if running_master(base_dir, env):
            found.append(env)
    return found


def master_address(host, port, base_dir, env):
    """(host, port) of the master to talk to; see the module's docstring for the order."""
    if host is not None or port is not None:
        return host or DEFAULT_HOST, port or DEFAULT_PORT
    if env is None:     # like Pomelo, no -e needed: the one running cluster of the project
        live = running_envs(base_dir)
        env = live[0] if len(live) == 1 else DEFAULT_ENV
    leader = cli_ha.leader_address(base_dir, env, fail)
    if leader:
        return leader
    saved = runstate.load(base_dir, env)["master"]
    if saved.get("port") and running_master(base_dir, env):
        return saved["host"], saved["port"]
    try:
        record = config.load_master(base_dir, env)
    except ZpomeloError:
        return DEFAULT_HOST, DEFAULT_PORT
    if record.port:
        return record.host, record.port
    if saved.get("port"):       # the last master of this project (dead: the call says so)
        return saved["host"], saved["port"]
    fail("no master of %s (%s) is running: config/master.json gives port 0, so start the "
         "cluster with `zpomelo start`, or give the master's address with -h/-P" % (base_dir, env))


def admin_options(fn):
    """-h/-P/-u/-p/-e/-d/--json, shared by the verbs that talk to a running master."""
    options = [
        click.option("-h", "--host", default=None, help="master host (default 127.0.0.1)"),
        click.option("-P", "--port", type=int, default=None, help="master port (default 3005)"),
        click.option("-u", "--username", default="admin", show_default=True),
        click.option("-p", "--password", default="admin", show_default=True),
        click.option("-e", "--env", default=None,
                     help="environment, to find the master of a project (default: the one "
                          "running, else development)"),
        click.option("-d", "--directory", default=None, help="project directory (default .)"),
        click.option("--json", "as_json", is_flag=True, help="print JSON for scripts"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def admin_client(opts):
    base_dir = project_dir(opts["directory"])
    host, port = master_address(opts["host"], opts["port"], base_dir, opts["env"])
    return AdminClient(host, port, opts["username"], opts["password"],
                       keys=security.load_keys(base_dir))


def call(opts, verb, args=None, timeout=None):
    try:
        return admin_client(opts).call(verb, args, timeout)
    except ZpomeloError as e:
        if opts["host"] is None and opts["port"] is None:   # masterHA: follow a new leader
            retry = cli_ha.after_failover(project_dir(opts["directory"]), opts["env"], e)
            if retry is not None:
                return call({**opts, "host": retry[0], "port": retry[1]}, verb, args, timeout)
        fail(str(e))


def emit(opts, result, text):
    click.echo(json.dumps(result, indent=1) if opts["as_json"] else text)


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="zpomelo")
def main():
    """zpomelo: run and manage a cluster of game servers (Pomelo's model)."""


# ---------------------------------------------------------------------- init

@main.command(context_settings=CONTEXT)
@click.argument("directory")
@click.option("--template", type=click.Choice(["project", "quick"]), default="project", show_default=True,
              help="project: gate, connector, a game backend; quick: players/areas/items in app.db")
def init(directory, template):
    """Create a new project in DIRECTORY (gate, connector, a game backend, configs)."""
    target = Path(directory).absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        fail("%s already exists and is not empty; choose a new directory" % target)
    shutil.copytree(TEMPLATE_DIR.parent / template, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    security.generate(target, curve=True)
    click.echo("created a zpomelo project in %s (cluster secret and CURVE keys in config/keys/: "
               "keep them out of version control)\nnext: cd %s && zpomelo start"
               % (target, target))


# ---------------------------------------------------------------------- keys

@main.command(context_settings=CONTEXT)
@click.option("-d", "--directory", default=None, help="project directory (default .)")
@click.option("--no-curve", is_flag=True,
              help="only the cluster secret (one host in development: no CURVE encryption)")
@click.option("--force", is_flag=True, help="replace existing keys (restart the cluster after)")
def keys(directory, no_curve, force):
    """Generate config/keys/: the cluster secret and CURVE key pairs (secret files mode 0600)."""
    base_dir = project_dir(directory)
    if not (Path(base_dir) / "config").is_dir():
        fail("%s has no config/ directory: run `zpomelo keys` in a project (or give it with -d)"
             % base_dir)
    try:
        written = security.generate(base_dir, curve=not no_curve, force=force)
    except ZpomeloError as e:
        fail(str(e))
    click.echo("wrote %s\n%s" % (", ".join(str(p.relative_to(base_dir)) for p in written),
               "copy config/keys/ to every host of the cluster (same project path); keep it out "
               "of version control; restart a running cluster to use new keys"))


# ---------------------------------------------------------------------- start

@main.command(context_settings=CONTEXT)
@click.option("-e", "--env", default=DEFAULT_ENV, show_default=True)
@click.option("-d", "--directory", default=None, help="project directory (default .)")
@click.option("-D", "--daemon", is_flag=True, help="run in the background, logs under logs/")
@click.option("-t", "--type", "server_type", default=None, help="start only this server type")
@click.option("-i", "--id", "server_id", default=None, help="start only this server")
@click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")
def start(env, directory, daemon, server_type, server_id, as_json):
    """Start the master and the servers of config/servers.json for ENV."""
    base_dir = project_dir(directory)
    try:
        master_record = config.load_master(base_dir, env)
        records = config.load_servers(base_dir, env)
        users = config.load_admin_users(base_dir, env)
        keys = security.make_local_secret(base_dir, env, security.load_keys(base_dir),
                                          [master_record.host] + [r.host for r in records])
        security.require_secret(keys)
        from zpomelo.master.control import select_servers
        select_servers(records, server_type, server_id)
    except ZpomeloError as e:
        fail(str(e))
    live = cli_ha.running_leader(base_dir, env, fail) or running_master(base_dir, env)
    if live:
        if not (server_type or server_id):
            fail("the cluster of %s (%s) is already running: master pid %s on %s:%s; see "
                 "`zpomelo list`, or stop it with `zpomelo stop`"
                 % (base_dir, env, live["pid"], live["host"], live["port"]))
        _start_on_running_master(live, users, keys, server_type, server_id, as_json)
        return
    if daemon:
        _start_daemon(base_dir, env, server_type, server_id, as_json)
        cli_ha.start_standbys(base_dir, env, as_json, spawn_master)
        return
    from zpomelo.master.__main__ import run_master, setup_logging
    setup_logging(base_dir, to_stderr=True)

    def ready(info):
        _report_ready(info, as_json, foreground=True)
        cli_ha.start_standbys(base_dir, env, as_json, spawn_master)
    code = run_master(base_dir, env, server_type, server_id, ready=ready)
    sys.exit(code)


def _start_on_running_master(live, users, keys, server_type, server_id, as_json):
    if not users:
        fail("config/adminUser.json has no user to talk to the running master with")
    client = AdminClient(live["host"], live["port"], users[0]["username"], users[0]["password"],
                         keys=keys)
    try:
        records = client.call("start", {"type": server_type, "id": server_id}, timeout=STOP_WAIT)
    except ZpomeloError as e:
        fail(str(e))
    click.echo(json.dumps(records, indent=1) if as_json else
               "started %s" % ", ".join(r["id"] for r in records))


def _start_daemon(base_dir, env, server_type, server_id, as_json):
    extra = []
    if server_type:
        extra += ["--type", server_type]
    if server_id:
        extra += ["--id", server_id]
    _report_ready(spawn_master(base_dir, env, extra), as_json, foreground=False)


def spawn_master(base_dir, env, extra, log_name="master.log"):
    """Start `python -m zpomelo.master` in the background; its ready line as a dict."""
    log_dir = runstate.log_dir(base_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    argv = [sys.executable, "-m", "zpomelo.master", "--dir", base_dir, "--env", env,
            "--ready-fd", str(write_fd)] + list(extra)
    with open(log_dir / log_name, "ab") as log:
        proc = subprocess.Popen(argv, cwd=base_dir, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, pass_fds=(write_fd,), start_new_session=True,
                                env=child_env())
    os.close(write_fd)
    line = _read_line(read_fd, START_WAIT)
    os.close(read_fd)
    if not line:
        code = proc.poll()
        fail("the master %s before the cluster was ready; see %s"
             % ("exited with code %s" % code if code is not None else
                "did not report within %.0f s" % START_WAIT, log_dir / log_name))
    info = json.loads(line)
    if not info.get("ok"):
        proc.wait(timeout=30)        # it stops what it started, then exits
    return info


def _read_line(fd, timeout):
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return data or None
        data += chunk
    return data.decode()


def _report_ready(info, as_json, foreground):
    if as_json:
        click.echo(json.dumps(info))
    elif info.get("ok"):
        click.echo("cluster started: %d servers in %.2f s; master pid %d on %s:%d%s"
                   % (info["servers"], info["elapsed"], info["pid"], info["host"], info["port"],
                      " (Ctrl-C stops it)" if foreground else ""))
        if info.get("adminWeb"):
            click.echo("admin console: %s" % info["adminWeb"])
    if not info.get("ok"):
        fail(info.get("error", "the cluster did not start"))


def _add_commands():
    from zpomelo.bench.cli import bench
    from zpomelo.reload import reload_command
    for command in admin_commands(admin_options, call, emit, fail):
        main.add_command(command)
    main.add_command(bench)
    main.add_command(reload_command(admin_options, call, emit))
    main.add_command(cli_ha.masterha_command(spawn_master, fail, project_dir))


_add_commands()

if __name__ == "__main__":
    main()
