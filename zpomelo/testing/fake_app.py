"""An app for calling one handler or remote as a plain function, with no sockets.

``FakeApp`` has the surface game code uses (settings, ``app.rpc``, channels, the cluster view,
``configure``/``route``/filters for ``app.py``) on real pieces where they are pure (membership,
routing, channels, the handler chain), and records the rest instead of sending it:
- ``rpc_calls``: every remote call (``app.rpc...``, notifies, backend-session calls), answered
  from the table the test sets with ``stub_rpc``; a call with no answer raises ``UnexpectedCall``
  (and is kept in ``unexpected``, so a handler that swallows errors still fails the test);
- ``pushes``: every push a channel or broadcast sent, with the uids it was for.
Arguments, answers and pushed messages go through msgpack as on the wire, so a value the real
cluster could not send (a set, an object) fails here too.
"""
import collections
import logging
import os

import msgpack

from zpomelo import loader
from zpomelo.application import Application, _env_matches, _type_matches
from zpomelo.backend_session import BackendSessionService
from zpomelo.channel import ChannelService, GlobalChannelService, GlobalMembers
from zpomelo.config import ServerRecord, load_servers
from zpomelo.errors import CODE_FAIL, ConfigError, RpcError, ServerGone
from zpomelo.handler import FilterChain, HandlerService
from zpomelo.membership import Membership, as_record
from zpomelo.rpc_proxy import RpcProxy

SYS = "_sys"

RpcCall = collections.namedtuple("RpcCall", "server_id server_type service method args kind")
RpcCall.__doc__ = "One remote call game code made; kind is 'call' or 'notify'."
Push = collections.namedtuple("Push", "frontend_id route msg uids kind")
Push.__doc__ = ("One push as a frontend receives it; kind is 'push' (to uids), 'broadcast' "
                "(everyone on the frontend: uids is None) or 'global' (a global channel's members).")


class UnexpectedCall(AssertionError):
    """Game code made a remote call the test set no answer for."""


def over_the_wire(value):
    """``value`` as the other side would get it: packed and unpacked with msgpack."""
    return msgpack.unpackb(msgpack.packb(value, use_bin_type=True), raw=False, strict_map_key=False)


class _RecordingRpcClient:
    """The one piece of the RPC client that game code reaches directly: ``notify``."""

    def __init__(self, app):
        self._app = app

    def notify(self, server_id, service, method, args):
        self._app._remote(server_id, service, method, args, "notify")


class FakeApp:
    """One server of a project (``FakeApp(project_dir, "connector-server-1")``: servers.json gives
    the cluster view and ``app.py``'s ``configure(app)`` runs), or a bare server
    (``FakeApp(server_type="chat", servers=[...])``) for code that needs no project.

    Components added with ``load`` are kept but not started; lifecycle hooks do not run.
    """

    def __init__(self, project_dir=None, server_id=None, env="test", server_type=None,
                 servers=(), frontend=False, settings=None):
        self.env = env
        self.base_dir = os.path.abspath(project_dir) if project_dir is not None else None
        records = [as_record(r) for r in servers]
        if self.base_dir is not None:
            records = load_servers(self.base_dir, env) + records
            record = _pick_record(records, server_id, self.base_dir, env)
        else:
            if server_type is None:
                raise ConfigError("FakeApp needs a project_dir or a server_type")
            record = ServerRecord(id=server_id or "%s-server-1" % server_type, server_type=server_type,
                                  host="127.0.0.1", port=0, frontend=frontend,
                                  client_port=0 if frontend else None)
            records = [record] + records
        self.current_server = record
        self.server_id = record.id
        self.server_type = record.server_type
        self.is_frontend = bool(record.frontend)
        self.settings = {"env": env, "base": self.base_dir, "serverId": record.id,
                         "serverType": record.server_type, "curServer": record}
        self.settings.update(settings or {})
        self.logger = logging.getLogger("zpomelo.app." + record.id)
        self.state = "started"

        self.filters = FilterChain()
        self.rpc_filters = []
        self.error_handler = None
        self.components = []
        self._route_fns = {}
        self.membership = Membership(record.id)
        for r in records:
            self.membership.add(r)

        self.rpc = RpcProxy(self)
        self.rpc_client = _RecordingRpcClient(self)
        self.channel_service = ChannelService(self)
        self.global_channel_service = GlobalChannelService(self)
        self.backend_session_service = BackendSessionService(self)

        self.rpc_calls = []
        self.pushes = []
        self.unexpected = []
        self._stubs = {}
        self._global_members = collections.defaultdict(GlobalMembers)
        self._services = {}

        if self.base_dir is not None:
            app_module = loader.load_app_module(self.base_dir)
            if app_module is not None and hasattr(app_module, "configure"):
                app_module.configure(self)

    # -- the test's side ---------------------------------------------------------------
    def stub_rpc(self, name, answer):
        """Answer remote calls to ``name`` ("<serverType>.<remote>.<method>", e.g.
        "chat.chatRemote.add") with ``answer``: a function (called with the call's arguments, its
        result returned), an exception (raised as the remote's failure), or a value (returned)."""
        if name.count(".") != 2:
            raise ValueError("name a remote as <serverType>.<remote>.<method>, not %r" % (name,))
        self._stubs[name] = answer
        return self

    def calls_to(self, name):
        """The argument lists of every call made to "<serverType>.<remote>.<method>"."""
        return [c.args for c in self.rpc_calls
                if "%s.%s.%s" % (c.server_type, c.service, c.method) == name]

    def pushes_to(self, uid):
        """[(route, msg)] of every push sent to ``uid`` by name (a broadcast names no uids: it is
        in ``pushes`` with ``uids=None``)."""
        return [(p.route, p.msg) for p in self.pushes if p.uids is not None and uid in p.uids]

    def handler(self, route):
        """The handler function serving ``route`` ("<serverType>.<handler>.<method>")."""
        return self._service_function(route, loader.HANDLER_DIR)

    def remote(self, route):
        """The remote function ``"<serverType>.<remote>.<method>"`` of this project."""
        return self._service_function(route, loader.REMOTE_DIR)

    def request(self, route, msg, session):
        """What a client would get for ``msg`` on ``route``: the filters, the handler and the
        error shaping of a real server, called here in this greenlet."""
        self.handler(route)
        server_type = route.split(".", 1)[0]
        service = HandlerService(self, server_type, self._services[(server_type, loader.HANDLER_DIR)],
                                 self.filters, expose_errors=self.get("exposeErrors", True))
        service.error_handler = self.error_handler
        return over_the_wire(service.handle(route, over_the_wire(msg), session))

    def call_remote(self, route, *args):
        """Run one of this project's remotes as a call from another server would."""
        fn = self.remote(route)
        return over_the_wire(fn(self, *over_the_wire(list(args))))

    def _service_function(self, route, kind):
        if self.base_dir is None:
            raise ConfigError("this FakeApp has no project: import the function and call it")
        parts = route.split(".")
        if len(parts) != 3:
            raise ValueError("a route is <serverType>.<file>.<function>, not %r" % (route,))
        server_type, name, fn_name = parts
        key = (server_type, kind)
        if key not in self._services:
            self._services[key] = loader.load_services(self.base_dir, server_type, kind)
        fn = self._services[key].get(name, {}).get(fn_name)
        if fn is None:
            raise ConfigError("no %s %s in %s (app/servers/%s/%s/%s.py)" % (
                kind, route, self.base_dir, server_type, kind, name))
        return fn

    # -- what game code calls: settings and configuration ----------------------------------
    def get(self, key, default=None):
        return self.settings.get(key, default)

    def set(self, key, value):
        self.settings[key] = value
        return self

    def enable(self, key):
        return self.set(key, True)

    def disable(self, key):
        return self.set(key, False)

    def enabled(self, key):
        return bool(self.settings.get(key))

    def configure(self, *args):
        fn = args[-1]
        env = args[0] if len(args) > 1 else None
        server_type = args[1] if len(args) > 2 else None
        if _env_matches(env, self.env) and _type_matches(server_type, self.server_type):
            fn()
        return self

    def route(self, server_type, fn):
        self._route_fns[server_type] = fn
        return self

    def before(self, f):
        self.filters.add_before(f)
        return self

    def after(self, f):
        self.filters.add_after(f)
        return self

    def filter(self, f):
        self.filters.add(f)
        return self

    def rpc_filter(self, f):
        self.rpc_filters.append(f)
        return self

    def set_error_handler(self, fn):
        self.error_handler = fn
        return self

    def load(self, component):
        self.components.append(component)
        return self

    # -- the cluster view ----------------------------------------------------------------
    def get_servers_by_type(self, server_type):
        return self.membership.by_type(server_type)

    def get_server(self, server_id):
        return self.membership.get(server_id)

    @property
    def servers(self):
        return dict(self.membership.servers)

    pick_server = Application.pick_server  # the real router, over this app's membership

    # -- remote calls: recorded, answered from the stubs -----------------------------------
    def rpc_call(self, server_id, service, method, args, timeout=None):
        for f in self.rpc_filters:
            if getattr(f, "before", None):
                f.before(server_id, service, method, args)
        result = error = None
        try:
            result = self._remote(server_id, service, method, args, "call")
            return result
        except Exception as exc:
            error = exc
            raise
        finally:
            for f in reversed(self.rpc_filters):
                if getattr(f, "after", None):
                    f.after(server_id, service, method, args, result, error)

    def _remote(self, server_id, service, method, args, kind):
        record = self.membership.get(server_id)
        if record is None:
            raise ServerGone("rpc %s.%s failed: server %s is not in the cluster" % (service, method, server_id),
                             server_id=server_id)
        args = over_the_wire(list(args))
        self.rpc_calls.append(RpcCall(server_id, record.server_type, service, method, args, kind))
        if service == SYS and method.startswith("gchan_"):
            members = self._global_members[server_id]
            return over_the_wire(getattr(members, method[len("gchan_"):])(*args))
        name = "%s.%s.%s" % (record.server_type, service, method)
        if name not in self._stubs:
            if kind == "notify":
                return None  # a notify has no answer: recorded, nothing to check
            error = UnexpectedCall(
                "%s called %s%r on %s, and the test set no answer for it: "
                "app.stub_rpc(%r, <value, function or exception>)%s" % (
                    self.server_id, name, tuple(args), server_id, name, self._stub_list()))
            self.unexpected.append(error)
            raise error
        answer = self._stubs[name]
        if isinstance(answer, type) and issubclass(answer, BaseException):
            answer = answer("raised by the test's stub for %s" % name)
        if isinstance(answer, BaseException):
            if isinstance(answer, RpcError):
                raise answer
            raise RpcError(str(answer), remote_type=type(answer).__name__,
                           code=getattr(answer, "code", CODE_FAIL), server_id=server_id) from answer
        if callable(answer):
            answer = answer(*args)
        return over_the_wire(answer)

    def _stub_list(self):
        return " (answers set: %s)" % ", ".join(sorted(self._stubs)) if self._stubs else ""

    # -- pushes: recorded as each frontend would receive them ------------------------------
    def deliver(self, frontend_id, message):
        kind, route, msg, target = over_the_wire(message)
        if kind == "push":
            self.pushes.append(Push(frontend_id, route, msg, list(target), "push"))
        else:
            self.pushes.append(Push(frontend_id, route, msg, None, "broadcast"))

    def deliver_global(self, message, frontend_ids):
        _, name, route, msg, exclude = over_the_wire(message)
        for frontend_id in frontend_ids:
            uids = [u for u in self._global_members[frontend_id].members(name) if u not in exclude]
            if uids:
                self.pushes.append(Push(frontend_id, route, msg, uids, "global"))

    def __repr__(self):
        return "<FakeApp %s (%s)>" % (self.server_id, self.server_type)


def _pick_record(records, server_id, base_dir, env):
    if server_id is None and len(records) == 1:
        return records[0]
    for record in records:
        if record.id == server_id:
            return record
    raise ConfigError("name one server of %s's %s environment for the FakeApp (servers: %s)" % (
        base_dir, env, ", ".join(r.id for r in records)))
