"""The Application: one server's identity, settings, game code and services, started in order.

This module is wiring and lifecycle only: pushes live in pushes.py, the _sys API in sysapi.py,
server choice in router.py, the filtered RPC call in rpc_proxy.py, settings in settings.py, peers
and the master's commands in cluster_link.py.
Start and stop orders: ``Application.start`` and ``Application.stop``.
"""
import dataclasses
import logging
import os

import gevent
import gevent.event

from zpomelo import loader, settings
from zpomelo.app_api import AppApi
from zpomelo.backend_session import BackendSessionService
from zpomelo.bus import Bus
from zpomelo.channel import ChannelService, GlobalChannelService
from zpomelo.cluster_link import ClusterLink
from zpomelo.config import ServerRecord, load_servers
from zpomelo.crons import CronScheduler
from zpomelo.errors import ConfigError
from zpomelo.global_filters import GlobalFilters
from zpomelo.handler import FilterChain, HandlerService
from zpomelo.membership import Membership
from zpomelo.metrics import AppMetrics
from zpomelo.metrics.stats import RequestStats
from zpomelo.players import Players
from zpomelo.pushes import Pushes
from zpomelo.remotes import RemoteDispatcher
from zpomelo.router import Router
from zpomelo.rpc import security
from zpomelo.rpc.client import RpcClient
from zpomelo.rpc.server import RpcServer
from zpomelo.rpc_proxy import RpcProxy
from zpomelo.sysapi import SysCalls, served_while_stopping

logger = logging.getLogger(__name__)


class Application(AppApi):
    """One server: game code's API (app_api.py), its services, and their start and stop."""

    def __init__(self, base_dir=".", env="development", server=None, master=None):
        self.base_dir = os.path.abspath(base_dir)
        self.env = env
        self.master_endpoint = master
        if isinstance(server, ServerRecord):
            record = server
        else:
            record = self._find_record(server)
        self.current_server = record
        self.server_id = record.id
        self.server_type = record.server_type
        self.is_frontend = bool(record.frontend)
        self.settings = {"env": env, "base": self.base_dir, "serverId": record.id,
                         "serverType": record.server_type}
        self.logger = logging.getLogger("zpomelo.app." + record.id)

        self.filters = FilterChain()
        self.global_filters = GlobalFilters()   # frontends: every client request (global_filters.py)
        self.rpc_filters = []
        self.error_handler = None
        self.components = []
        self.lifecycle = None
        self.state = "inited"

        self.membership = Membership(record.id)
        self.rpc = RpcProxy(self)
        self.router = Router(self)
        self.sys_calls = SysCalls(self)
        self.pushes = Pushes(self)
        self.players = Players(self)     # the uid directory: push_to_uid, one session per uid
        self.rpc_client = None
        self.rpc_server = None
        self.bus = None
        self.frontend = None
        self.session_service = None
        self.connector = None
        self.agent = None        # master/agent.py's MasterAgent, when there is a master
        self.cluster = ClusterLink(self)   # peers from membership; the master's commands
        self.channel_service = ChannelService(self)
        self.global_channel_service = GlobalChannelService(self)
        self.backend_session_service = None
        self.handler_service = None
        self.db = None           # zpomelo.db.Database when the project configures a store
        self.remotes = None
        self.crons = CronScheduler(self)   # config/crons.json, app.add_crons
        self._watcher = None     # reloadOnChange: zpomelo.reload.FileWatcher
        self.metrics = AppMetrics(self)     # /metrics (the [metrics] extra); bound in start()
        # handler and RPC latencies, always on: read by /metrics and the admin console
        self.stats = RequestStats(lambda route: self.handler_service.has(route), self._type_of)
        self._stopped = gevent.event.Event()

        app_module = loader.load_app_module(self.base_dir)
        if app_module is not None and hasattr(app_module, "configure"):
            app_module.configure(self)

    def _type_of(self, server_id):
        """The server type of a server in the membership, or None (app.stats names RPC targets)."""
        record = self.membership.get(server_id)
        return record.server_type if record is not None else None

    def _find_record(self, server_id):
        records = load_servers(self.base_dir, self.env)
        if server_id is None:
            if len(records) == 1:
                return records[0]
            raise ConfigError("name the server to run (one of %s)" % ", ".join(r.id for r in records))
        for record in records:
            if record.id == server_id:
                return record
        raise ConfigError("no server %r in the %s environment (servers: %s)" % (
            server_id, self.env, ", ".join(r.id for r in records)))

    # -- lifecycle ---------------------------------------------------------------------
    def _hook(self, name):
        fn = getattr(self.lifecycle, name, None) if self.lifecycle is not None else None
        if fn is not None:
            fn(self)

    def start(self, static_peers=None):
        """Bind every socket -> start filters and components -> serve RPC and the bus -> fill
        membership (master or self) -> after_startup -> only then accept clients.

        Binding first means a bad port fails before anything runs; accepting last means no
        client request arrives before components and membership are ready. When a step fails,
        what was started is stopped and the error raised. Without a master, ``static_peers``
        (records with fixed ports, e.g. servers.json) are the membership.
        """
        self.state = "starting"
        settings.check(self.settings, settings.APP)
        self.lifecycle = loader.load_lifecycle(self.base_dir, self.server_type)
        handlers = loader.load_services(self.base_dir, self.server_type, loader.HANDLER_DIR)
        remotes = loader.load_services(self.base_dir, self.server_type, loader.REMOTE_DIR)
        self.handler_service = HandlerService(
            self, self.server_type, handlers, self.filters,
            expose_errors=settings.value(self.settings, "exposeErrors",
                                         fallback=self.env != "production"))
        self.handler_service.error_handler = self.error_handler
        self.handler_service.stats = self.stats.handlers
        from zpomelo.db.integration import attach as attach_db
        self.db = attach_db(self)
        self.remotes = RemoteDispatcher(self, remotes)
        self.crons.load()
        self._hook("before_startup")
        try:
            self._bind()
            for f in self._filter_objects():
                if hasattr(f, "start"):
                    f.start()
            for component in self.components:
                if hasattr(component, "start"):
                    component.start(self)
            self.rpc_server.start()
            self.bus.start()
            self.metrics.start()
            self.cluster.join(static_peers)
            self.players.start()
            self.state = "started"
            self._hook("after_startup")
            for component in self.components:
                if hasattr(component, "after_start"):
                    component.after_start(self)
            if self.connector is not None:
                self.connector.start()
            self.crons.start()
            if self.setting("reloadOnChange"):
                from zpomelo.reload import FileWatcher
                self._watcher = FileWatcher(self)
                self._watcher.start()
        except BaseException:
            logger.error("%s: start failed; stopping what was started", self.server_id)
            self._close(1.0)
            self.state = "stopped"
            self._stopped.set()
            raise
        logger.info("%s (%s) started: rpc %s, bus %s%s", self.server_id, self.server_type,
                    self.rpc_server.port, self.bus.port,
                    ", clients %s" % self.connector.port if self.connector else "")
        return self

    def _bind(self):
        """Bind the RPC server, the bus and (frontends) the client listener; record the ports."""
        record = self.current_server
        self.keys = security.load_keys(self.base_dir)   # CURVE for RPC and the bus when present
        security.check_production(self.env, self.keys, [record.host])
        self.rpc_client = RpcClient(self.server_id, default_timeout=self.setting("rpcTimeout"),
                                    keys=self.keys)
        self.rpc_client.observer = self.stats.rpc
        self.backend_session_service = BackendSessionService(self)
        self.rpc_server = RpcServer(record.host, record.port, self.remotes.dispatch,
                                    pool_size=self.setting("rpcPoolSize"), name=self.server_id,
                                    keys=self.keys)
        self.rpc_server.bind()
        bus_port = int(record.extra.get("busPort", 0) or 0)
        self.bus = Bus(self.server_id, record.host, bus_port, self.pushes.on_bus, self.pushes.fallback,
                       keys=self.keys)
        self.bus.bind()
        bound = {"port": self.rpc_server.port}
        extra = dict(record.extra)
        extra["busPort"] = self.bus.port
        extra["pid"] = os.getpid()
        metrics_port = self.metrics.bind()
        if metrics_port is None:
            extra.pop("metricsPort", None)      # nothing listens: no one should scrape it
        else:
            extra["metricsPort"] = metrics_port
        if self.is_frontend:
            from zpomelo.frontend import FrontendService
            self.frontend = FrontendService(self)
            self.session_service = self.frontend.sessions
            self.connector = self.frontend.bind_connector()
            bound["client_port"] = self.connector.port
        self.current_server = dataclasses.replace(record, extra=extra, **bound)
        self.settings["curServer"] = self.current_server

    def add_static_peers(self, records):
        """Membership without a master: the given records (e.g. servers.json with fixed ports)."""
        self.cluster.add_static_peers(records)

    def info(self):
        """What the master shows in `zpomelo list` (cluster_link.ClusterLink.info)."""
        return self.cluster.info()

    def stop(self, drain_timeout=None):
        """Graceful stop, in an order that loses no request:

        before_shutdown -> stop accepting clients and refuse new RPC work (a clear error to the
        caller; the _sys plumbing that in-flight work elsewhere needs is still served) -> drain
        the frontend's and the RPC server's in-flight work together, within one deadline ->
        stop components and filters -> unregister -> close sockets.
        """
        if self.state in ("stopping", "stopped"):
            self._stopped.wait()
            return
        self.state = "stopping"
        drain = drain_timeout if drain_timeout is not None else self.setting("drainTimeout")
        try:
            self._hook("before_shutdown")
        except Exception:
            logger.exception("%s: before_shutdown failed", self.server_id)
        self.crons.stop()
        if self._watcher is not None:
            self._watcher.stop()
        if self.connector is not None:
            self.connector.stop_accepting()
        if self.rpc_server is not None:
            self.rpc_server.stop_accepting(keep=served_while_stopping)
        self._drain(drain)
        for component in reversed(self.components):
            if hasattr(component, "stop"):
                try:
                    component.stop(self)
                except Exception:
                    logger.exception("%s: component %r failed to stop", self.server_id, component)
        self._close(1.0)
        self.state = "stopped"
        self._stopped.set()
        logger.info("%s stopped", self.server_id)

    def _drain(self, timeout):
        """The frontend's requests and the RPC server's calls, waited for at the same time."""
        waits = []
        if self.frontend is not None:
            waits.append(gevent.spawn(self.frontend.drain, timeout))
        if self.rpc_server is not None:
            waits.append(gevent.spawn(self.rpc_server.drain, timeout))
        gevent.joinall(waits, timeout=timeout + 1.0)

    def _filter_objects(self):
        seen = list(self.filters.objects)
        if not self.is_frontend:   # global filters run on frontends only
            return seen
        seen.extend(f for f in self.global_filters.objects if not any(f is g for g in seen))
        return seen

    def _close(self, timeout):
        """Filters, unregister, then every socket (also what a failed start had opened)."""
        for f in self._filter_objects():
            if hasattr(f, "stop"):
                try:
                    f.stop()
                except Exception:
                    logger.exception("%s: filter %r failed to stop", self.server_id, f)
        self.players.stop()
        if self.agent is not None:
            self.agent.stop()
        if self.frontend is not None:
            self.frontend.stopping = True       # closing connections get no resume window
        if self.connector is not None:
            self.connector.stop()
        if self.frontend is not None:
            self.frontend.resume.close_all("server stopping")
        if self.rpc_server is not None:
            self.rpc_server.close(timeout)
        if self.bus is not None:
            self.bus.close()
        self.metrics.close()
        if self.rpc_client is not None:
            self.rpc_client.close()
        if self.db is not None:
            self.db.close()

    def wait_stopped(self, timeout=None):
        return self._stopped.wait(timeout)


def create_app(base_dir=".", env=None, server=None, master=None):
    """An Application for one server of the project in ``base_dir``."""
    env = env or os.environ.get("ZPOMELO_ENV") or "development"
    return Application(base_dir, env, server, master)
