"""The command line's part of master HA: find the leader through ZooKeeper, follow a failover,
start standby masters (`zpomelo masterha`, and `zpomelo start` when master.json lists standbys).

Without masterHA in config/master.json every function here does nothing (returns None), and
ZooKeeper and kazoo are never touched.
"""
import json
import sys

import click

from zpomelo.errors import ZpomeloError
from zpomelo.master import ha_config

FIND_TIMEOUT = 3.0          # how long the CLI waits for a leader record that serves
FAILOVER_SLACK = 5.0        # beyond the session timeout: how long to wait for a new leader


def _config(base_dir, env, fail):
    try:
        return ha_config.load(base_dir, env or "development")
    except ZpomeloError as e:
        fail(str(e))


def leader_address(base_dir, env, fail):
    """(host, port) of the leading master, or None without masterHA."""
    cfg = _config(base_dir, env, fail)
    if cfg is None:
        return None
    from zpomelo.master.discovery import find_leader
    try:
        leader = find_leader(cfg, FIND_TIMEOUT)
    except ZpomeloError as e:
        fail(str(e))
    return leader["host"], leader["port"]


def running_leader(base_dir, env, fail):
    """The serving leader record when a cluster with masterHA runs, else None."""
    cfg = _config(base_dir, env, fail)
    if cfg is None:
        return None
    from zpomelo.master.discovery import find_leader
    try:
        return find_leader(cfg, 0)
    except ZpomeloError as e:
        if "cannot reach ZooKeeper" in str(e) or "kazoo" in str(e):
            fail(str(e))
        return None


def after_failover(base_dir, env, error):
    """When a call failed because the master is gone or no longer leads, wait for the next
    leader and return its (host, port) so the call is sent again; None otherwise.

    Only refusals that guarantee nothing was done are retried: no master listening, or a master
    that answered it does not lead."""
    text = str(error)
    if "no master is listening" not in text and "does not lead" not in text:
        return None
    try:
        cfg = ha_config.load(base_dir, env or "development")
    except ZpomeloError:
        return None
    if cfg is None:
        return None
    from zpomelo.master.discovery import find_leader
    try:
        current = find_leader(cfg, FIND_TIMEOUT)
        leader = find_leader(cfg, cfg.session_timeout + FAILOVER_SLACK,
                             newer_than=current["epoch"])
    except ZpomeloError:
        return None
    click.echo("the master failed over to %s at %s:%s (epoch %d)"
               % (leader.get("id"), leader["host"], leader["port"], leader["epoch"]), err=True)
    return leader["host"], leader["port"]


def start_standbys(base_dir, env, as_json, spawn_master, only=None):
    """Start the standby masters of masterHA.standbys in the background; returns their infos."""
    try:
        cfg = ha_config.load(base_dir, env)
    except ZpomeloError as e:
        raise click.ClickException(str(e))
    if cfg is None:
        return []
    infos = []
    masters = list(cfg.standbys)
    if only is not None and only not in [r.id for r in masters]:
        masters = [ha_config.master_record(base_dir, env, only)]   # the primary, back as standby
    for record in masters:
        if only and record.id != only:
            continue
        if not only and not _local(base_dir, env, record):
            click.echo("standby master %s is on %s: start it there with `zpomelo masterha -i %s`"
                       % (record.id, record.host, record.id), err=True)
            continue
        info = spawn_master(base_dir, env, ["--master-id", record.id, "--standby"],
                            log_name="%s.log" % record.id)
        infos.append(info)
        if as_json:
            click.echo(json.dumps(info))
        elif info.get("ok"):
            click.echo("standby master %s started: pid %d, waiting to take over from %s"
                       % (record.id, info["pid"], info.get("leader") or "the leader"))
        else:
            click.echo("error: standby master %s: %s" % (record.id, info.get("error")), err=True)
    return infos


def _local(base_dir, env, record):
    """Whether a master's host is this machine: loopback, the primary's host, or localHosts."""
    from zpomelo import config
    from zpomelo.master.launcher import LOOPBACK_NAMES
    primary = config.load_master(base_dir, env)
    local = {h.lower() for h in LOOPBACK_NAMES} | {primary.host.lower()}
    local.update(str(h).lower() for h in primary.extra.get("localHosts") or ())
    return record.host.lower() in local


def masterha_command(spawn_master, fail, project_dir):
    @click.command(name="masterha", context_settings=dict(help_option_names=["--help"]))
    @click.option("-e", "--env", default="development", show_default=True)
    @click.option("-d", "--directory", default=None, help="project directory (default .)")
    @click.option("-i", "--id", "master_id", default=None,
                  help="start only this master as a standby (an id of masterHA.standbys, or the "
                       "primary's id to bring a failed primary back as a standby)")
    @click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")
    def masterha(env, directory, master_id, as_json):
        """Start standby masters (masterHA.standbys of config/master.json) in the background.

        Without -i, the standbys whose host is this machine (loopback, the primary's host, or
        localHosts); run it with -i on the other hosts. Each waits in the ZooKeeper election and takes the running cluster over when the
        leading master dies or loses its ZooKeeper session."""
        base_dir = project_dir(directory)
        cfg = _config(base_dir, env, fail)
        if cfg is None:
            fail("masterHA is not enabled in config/master.json for %s; see config/README.md"
                 % env)
        if master_id is not None:
            try:
                ha_config.master_record(base_dir, env, master_id)
            except ZpomeloError as e:
                fail(str(e))
        elif not cfg.standbys:
            fail("masterHA.standbys in config/master.json lists no standby master; add one, or "
                 "name a master with -i")
        infos = start_standbys(base_dir, env, as_json, spawn_master, only=master_id)
        if not all(info.get("ok") for info in infos):
            sys.exit(1)
    return masterha
