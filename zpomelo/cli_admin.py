"""The admin verbs that only talk to a running master: list, add, stop, kill, restart.

cli.py adds them to the zpomelo group and gives them what every verb that talks to a running
master shares (the -h/-P/-u/-p/-e/-d/--json options, calling the master, printing the result,
failing), as it does for reload.
"""
import time

import click

from zpomelo import config
from zpomelo.errors import ZpomeloError
from zpomelo.master import procinfo

STOP_WAIT = 60.0            # stop/kill: how long the master may take

CONTEXT = dict(help_option_names=["--help"])


# ---------------------------------------------------------------------- list

COLUMNS = (("id", "id"), ("type", "serverType"), ("pid", "pid"), ("address", None),
           ("clientPort", "clientPort"), ("metrics", "metricsPort"), ("state", "state"), ("uptime", "uptime"),
           ("RSS", "rss"), ("CPU%", "cpu"), ("conns", "connections"), ("bad input", "badInput"),
           ("restarts", "restarts"))


def _cell(row, key, header):
    if header == "address":
        return "%s:%s" % (row.get("host"), row.get("port"))
    value = row.get(key)
    if value is None:
        return "-"
    if key == "rss":
        return "%.1fM" % (value / 1048576.0)
    if key == "uptime":
        return _duration(value)
    if key == "badInput":   # kind -> count; the total here, the kinds in --json
        return str(sum(value.values()))
    return str(value)


def _duration(seconds):
    seconds = int(seconds)
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        return "%dm%02ds" % divmod(seconds, 60)
    return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)


def format_table(rows):
    cells = [[header for header, _ in COLUMNS]]
    cells += [[_cell(row, key, header) for header, key in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def admin_commands(admin_options, call, emit, fail):
    """The click commands, for cli.py to add to its group."""

    @click.command(name="list", context_settings=CONTEXT)
    @admin_options
    def list_servers(**opts):
        """Show every server: pid, addresses, state, uptime, memory, CPU, connections."""
        rows = call(opts, "list")
        emit(opts, rows, format_table(rows))

    # ---------------------------------------------------------------------- add

    @click.command(context_settings=CONTEXT)
    @admin_options
    @click.argument("pairs", nargs=-1, required=True)
    def add(pairs, **opts):
        """Add servers to the running cluster: id=.. host=.. port=.. serverType=.. [clientPort=..
        frontend=true] [clusterCount=N]."""
        try:
            server = config.parse_server_args(pairs)
        except ZpomeloError as e:
            fail(str(e))
        records = call(opts, "add", {"servers": [server]}, timeout=STOP_WAIT)
        emit(opts, records, "\n".join(
            "added %s (%s) pid %s on %s:%s%s" % (r["id"], r["serverType"], r.get("pid"), r["host"],
                                                 r["port"], " client port %s" % r["clientPort"]
                                                 if r.get("clientPort") else "")
            for r in records))

    # ---------------------------------------------------------------------- stop / kill / restart

    @click.command(context_settings=CONTEXT)
    @admin_options
    @click.argument("ids", nargs=-1)
    def stop(ids, **opts):
        """Stop servers gracefully (they drain); with no ids, every server and then the master."""
        _stop(opts, "stop", ids)

    @click.command(context_settings=CONTEXT)
    @admin_options
    @click.argument("ids", nargs=-1)
    def kill(ids, **opts):
        """Kill servers at once (SIGKILL); with no ids, every server and then the master."""
        _stop(opts, "kill", ids)

    def _stop(opts, verb, ids):
        result = call(opts, verb, {"ids": list(ids)}, timeout=STOP_WAIT)
        master_pid = result.get("master")
        if master_pid:
            deadline = time.monotonic() + 15.0
            while procinfo.is_alive(master_pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if procinfo.is_alive(master_pid):
                fail("the servers are stopped but the master (pid %d) is still running" % master_pid)
        done = "stopped" if verb == "stop" else "killed"
        emit(opts, result, "%s %s%s" % (done, ", ".join(result["stopped"]) or "no server",
                                        " and the master" if master_pid else ""))

    @click.command(context_settings=CONTEXT)
    @admin_options
    @click.option("-t", "--type", "server_type", default=None)
    @click.option("-i", "--id", "server_id", default=None)
    def restart(server_type, server_id, **opts):
        """Restart servers one by one (all, one type, or one id)."""
        records = call(opts, "restart", {"type": server_type, "id": server_id}, timeout=300)
        emit(opts, records, "restarted %s" % ", ".join(
            "%s (pid %s)" % (r["id"], r.get("pid")) for r in records))

    return [list_servers, add, stop, kill, restart]
