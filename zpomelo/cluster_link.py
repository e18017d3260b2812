"""One server's link to the rest of the cluster: who its peers are, and what the master asks of it.

Membership (membership.py) says who is in the cluster; this module turns each join and leave into
RPC and bus peers, fills membership from the master (through its agent, master/agent.py) or from
static records, and answers the master's commands (stop, kill, info, reload, metrics, report,
after_start_all). The Application owns one ``ClusterLink`` and calls ``join`` during its start.
"""
import gc
import logging
import os

import gevent

from zpomelo import reports

logger = logging.getLogger(__name__)


class ClusterLink:
    def __init__(self, app):
        self.app = app

    def join(self, static_peers):
        """Listen to membership, add this server, then the peers: the master's view (the agent
        registers us and reports everyone) or, without a master, ``static_peers``."""
        app = self.app
        app.membership.listen(self.peer_added, self.peer_removed)
        app.membership.listen(app.players.on_member_added, app.players.on_member_removed)
        app.membership.add(app.current_server)
        if static_peers and not app.master_endpoint:
            self.add_static_peers(static_peers)
        if app.master_endpoint:
            from zpomelo.master.discovery import start_agent    # masterHA: via ZooKeeper
            app.agent, members = start_agent(
                app.base_dir, app.env, app.master_endpoint, app.current_server.to_dict(),
                on_add=app.membership.add, on_remove=app.membership.remove,
                on_command=self.on_master_command, keys=app.keys)
            app.membership.replace_all(members)

    def add_static_peers(self, records):
        """Membership without a master: the given records (e.g. servers.json with fixed ports)."""
        app = self.app
        for record in records:
            if record.id == app.server_id:
                continue
            if not record.port:
                logger.warning("%s: peer %s has port 0 in servers.json: without a master it cannot "
                               "be found; start the cluster with `zpomelo start`", app.server_id,
                               record.id)
                continue
            app.membership.add(record)

    def peer_added(self, record, old):
        app = self.app
        if record.id == app.server_id:
            return
        app.rpc_client.add_peer(record.id, "tcp://%s:%s" % (record.host, record.port))
        bus_port = record.extra.get("busPort")
        if bus_port:
            app.bus.add_peer(record.id, "tcp://%s:%s" % (record.host, bus_port))
        else:
            app.sys_calls.hello_async(record.id, self._hello_answered(record.id))

    def _hello_answered(self, server_id):
        app = self.app

        def done(error, info):
            if error is None and info and info.get("busPort") and app.membership.get(server_id):
                host = app.membership.get(server_id).host
                app.bus.add_peer(server_id, "tcp://%s:%s" % (host, info["busPort"]))
        return done

    def peer_removed(self, record):
        app = self.app
        if record.id == app.server_id:
            return
        app.rpc_client.remove_peer(record.id)
        app.bus.remove_peer(record.id)

    def on_master_command(self, name, args):
        """The master's command ``name`` (master/wire.py CMD_*): its answer, or ValueError."""
        app = self.app
        if name == "stop":
            gevent.spawn(app.stop)
            return True
        if name == "kill":
            # answer first (the master then knows it need not kill -9 on our host), then die
            gevent.spawn_later(0.1, os._exit, 1)
            return True
        if name == "info":
            return self.info()
        if name == "reload":
            from zpomelo.reload import reload_code
            return reload_code(app)
        if name == "metrics":
            return app.metrics.snapshot()
        if name == reports.REPORT:
            return reports.report(app, args)
        if name == "after_start_all":
            app._hook("after_start_all")
            for component in app.components:
                if hasattr(component, "after_start_all"):
                    component.after_start_all(app)
            return True
        raise ValueError("unknown master command %r" % name)

    def info(self):
        """What the master shows in `zpomelo list`: measured here, on this server's host."""
        from zpomelo.master.procinfo import self_report
        app = self.app
        report = self_report()
        report.update({"id": app.server_id, "serverType": app.server_type,
                       "state": app.state, "host": app.current_server.host,
                       "connections": len(app.frontend.sessions) if app.frontend else 0,
                       # bad client input by kind (connector/badinput.py), for list and metrics
                       "badInput": dict(app.connector.bad_input.counts) if app.connector else {},
                       # objects the collector never walks (zpomelo.gcfreeze)
                       "gcFrozen": gc.get_freeze_count()})
        return report
