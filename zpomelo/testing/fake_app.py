"""An app for calling one handler or remote as a plain function, with no sockets.

``FakeApp`` has the surface game code uses (settings, ``app.rpc``, channels, the cluster view,
``configure``/``route``/filters for ``app.py``) on real pieces where they are pure (membership,
routing, channels, the handler chain), and records the rest instead of sending it:
- ``rpc_calls``: every remote call (``app.rpc...``, notifies, backend-session calls), answered
  from the table the test sets with ``stub_rpc``; a call with no answer raises ``UnexpectedCall``
  (and is kept in ``unexpected``, so a handler that swallows errors still fails the test);
- ``pushes_sent``: every push a channel or broadcast sent, with the uids it was for (through
  the real ``app.pushes.send``, so ``app.pushes.hold`` works as in a server);
- the uid directory: ``set_online(uid, frontend_id)`` says where a player is connected, so
  ``app.push_to_uid(s)`` and ``channel.add(uid)`` find it (a uid not set is offline).
Arguments, answers and pushed messages go through msgpack as on the wire, so a value the real
cluster could not send (a set, an object) fails here too.
"""
import collections
import os

import msgpack

from zpomelo import loader, settings
from zpomelo.application import Application
from zpomelo.backend_session import BackendSessionService
from zpomelo.channel import GlobalMembers
from zpomelo.config import ServerRecord, load_servers
from zpomelo.db.routes import install_routes
from zpomelo.errors import CODE_FAIL, ConfigError, RpcError, ServerGone
from zpomelo.handler import HandlerService
from zpomelo.membership import as_record
from zpomelo.pushes import BROADCAST, PUSH, Pushes
from zpomelo.sysapi import DIR_LOOKUP, GCHAN_ADD, GCHAN_DESTROY, GCHAN_LEAVE, GCHAN_MEMBERS, SYS

NO_PROJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "no-project")  # never created

GLOBAL_MEMBERS_CALLS = {GCHAN_ADD: "add", GCHAN_LEAVE: "leave", GCHAN_MEMBERS: "members",
                        GCHAN_DESTROY: "destroy"}

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


class _RecordingRpc:
    """Stands in for the RPC client and for this server's own remotes: every call is recorded
    and answered from the test's stubs (``FakeApp._remote``)."""

    def __init__(self, app):
        self._app = app

    def call(self, server_id, service, method, args, timeout=None):
        return self._app._remote(server_id, service, method, args, "call")

    def call_here(self, service, method, args):
        return self._app._remote(self._app.server_id, service, method, args, "call")

    def call_async(self, server_id, service, method, args, timeout=None, callback=None):
        try:
            result = self._app._remote(server_id, service, method, args, "call")
        except Exception as exc:
            callback(exc, None)
            return
        callback(None, result)

    def notify(self, server_id, service, method, args):
        self._app._remote(server_id, service, method, args, "notify")


class _RecordingPushes(Pushes):
    """The real push entry (``send``, ``hold``), with delivery recorded instead of sent."""

    def deliver(self, message, frontend_ids, everywhere=False):
        self.stats["sent"] += 1
        self._app._record_push(over_the_wire(message), frontend_ids)


class FakeApp(Application):
    """One server of a project (``FakeApp(project_dir, "connector-server-1")``: servers.json gives
    the cluster view and ``app.py``'s ``configure(app)`` runs), or a bare server
    (``FakeApp(server_type="chat", servers=[...])``) for code that needs no project.

    The settings, configuration, cluster view and ``rpc_call`` are the Application's own methods;
    the sockets are replaced by recorders. Components added with ``load`` are kept but not started;
    lifecycle hooks do not run; ``app.db`` is None unless the test assigns a store.
    """

    def __init__(self, project_dir=None, server_id=None, env="test", server_type=None,
                 servers=(), frontend=False, settings=None):
        base_dir = os.path.abspath(project_dir) if project_dir is not None else None
        records = [as_record(r) for r in servers]
        if base_dir is not None:
            records = load_servers(base_dir, env) + records
            record = _pick_record(records, server_id, base_dir, env)
        else:
            if server_type is None:
                raise ConfigError("FakeApp needs a project_dir or a server_type")
            record = ServerRecord(id=server_id or "%s-server-1" % server_type, server_type=server_type,
                                  host="127.0.0.1", port=0, frontend=frontend,
                                  client_port=0 if frontend else None)
            records = [record] + records
        self.rpc_calls = []
        self.pushes_sent = []
        self.unexpected = []
        self._stubs = {}
        self._global_members = collections.defaultdict(GlobalMembers)
        self.online = {}    # uid -> [[frontend id, sid], ...]: what set_online said
        self._services = {}
        # The Application's own set-up (it runs app.py's configure when there is a project), then
        # the sockets' places taken by recorders. A bare app reads no project: NO_PROJECT has no app.py.
        super().__init__(base_dir or NO_PROJECT, env, record)
        if base_dir is None:
            self.base_dir = self.settings["base"] = None
        self.settings["curServer"] = record
        self.settings.update(settings or {})
        self.state = "started"
        for r in records:
            self.membership.add(r)
        self.pushes = _RecordingPushes(self)
        self.rpc_client = self.remotes = _RecordingRpc(self)
        self.backend_session_service = BackendSessionService(self)
        if base_dir is not None:
            install_routes(self)  # app/routes/<type>.py, as a starting server does

    def start(self):
        raise TypeError("a FakeApp has no sockets to start: call handlers with app.request or "
                        "directly; run a real cluster with zpomelo.testing.InProcessCluster")

    def stop(self, drain_timeout=None):
        """Nothing to stop (no sockets)."""

    # -- the test's side ---------------------------------------------------------------
    def stub_rpc(self, name, answer):
        """Answer remote calls to ``name`` ("<serverType>.<remote>.<method>", e.g.
        "chat.chatRemote.add") with ``answer``: a function (called with the call's arguments, its
        result returned), an exception (raised as the remote's failure), or a value (returned)."""
        if name.count(".") != 2:
            raise ValueError("name a remote as <serverType>.<remote>.<method>, not %r" % (name,))
        self._stubs[name] = answer
        return self

    def set_online(self, uid, frontend_id, sid=1):
        """Tell the uid directory that uid is connected to frontend_id (with session id sid);
        ``frontend_id=None`` takes it offline."""
        if frontend_id is None:
            self.online.pop(uid, None)
        else:
            self.online[uid] = [[frontend_id, sid]]

    def calls_to(self, name):
        """The argument lists of every call made to "<serverType>.<remote>.<method>"."""
        return [c.args for c in self.rpc_calls
                if "%s.%s.%s" % (c.server_type, c.service, c.method) == name]

    def pushes_to(self, uid):
        """[(route, msg)] of every push sent to ``uid`` by name (a broadcast names no uids: it is
        in ``pushes_sent`` with ``uids=None``)."""
        return [(p.route, p.msg) for p in self.pushes_sent if p.uids is not None and uid in p.uids]

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
        if server_type != self.server_type:
            servers = ", ".join(r.id for r in self.get_servers_by_type(server_type)) or "none here"
            raise ConfigError("%s is served by %s servers (%s), and this FakeApp is %s (%s): make the "
                              "FakeApp for one of those" % (route, server_type, servers,
                                                            self.server_id, self.server_type))
        service = HandlerService(self, server_type, self._services[(server_type, loader.HANDLER_DIR)],
                                 self.filters, expose_errors=settings.value(
                                     self.settings, "exposeErrors", fallback=self.env != "production"))
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

    # -- remote calls: recorded, answered from the stubs -----------------------------------
    def _remote(self, server_id, service, method, args, kind):
        record = self.membership.get(server_id)
        if record is None:
            raise ServerGone("rpc %s.%s failed: server %s is not in the cluster" % (service, method, server_id),
                             server_id=server_id)
        args = over_the_wire(list(args))
        self.rpc_calls.append(RpcCall(server_id, record.server_type, service, method, args, kind))
        if service == SYS and method == DIR_LOOKUP:
            return over_the_wire({uid: self.online[uid] for uid in args[0] if uid in self.online})
        if service == SYS and method in GLOBAL_MEMBERS_CALLS:
            members = self._global_members[server_id]   # each frontend's share, kept here
            return over_the_wire(getattr(members, GLOBAL_MEMBERS_CALLS[method])(*args))
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
    def _record_push(self, message, frontend_ids):
        kind = message[0]
        for frontend_id in frontend_ids:
            if kind == PUSH:
                self.pushes_sent.append(Push(frontend_id, message[1], message[2], list(message[3]), "push"))
            elif kind == BROADCAST:
                self.pushes_sent.append(Push(frontend_id, message[1], message[2], None, "broadcast"))
            else:
                _, name, route, msg, exclude = message
                uids = [u for u in self._global_members[frontend_id].members(name) if u not in exclude]
                if uids:
                    self.pushes_sent.append(Push(frontend_id, route, msg, uids, "global"))

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
