"""``app.rpc.<serverType>.<remoteName>.<method>(route_param, *args)``: remote calls made readable."""
import time

import gevent

from zpomelo.db.transaction import after_commit
from zpomelo.errors import ServerGone


def call(app, server_id, service, method, args, timeout=None):
    """One remote call with the app's RPC filters around it (``app.rpc_call``): a call to this
    server runs here, in the calling greenlet, failing the way a remote call would."""
    filters = app.rpc_filters
    for f in filters:
        if getattr(f, "before", None):
            f.before(server_id, service, method, args)
    result = error = None
    try:
        if server_id == app.server_id:
            result = _call_here(app, service, method, args)
        else:
            result = app.rpc_client.call(server_id, service, method, args,
                                         timeout or app.setting("rpcTimeout"))
        return result
    except Exception as exc:
        error = exc
        raise
    finally:
        for f in reversed(filters):
            if getattr(f, "after", None):
                f.after(server_id, service, method, args, result, error)


def _call_here(app, service, method, args):
    """A call to this server: counted here, since it never reaches the RPC client (which counts
    every other call in app.stats.rpc)."""
    started = time.perf_counter()
    ok = False
    try:
        result = app.remotes.call_here(service, method, args)
        ok = True
        return result
    finally:
        app.stats.rpc.reply(app.server_id, service, method, time.perf_counter() - started, ok)


def call_many(app, server_ids, service, method, args, timeout=None):
    """The same call on several servers at once -> {server_id: result}; the first error raises."""
    calls = [gevent.spawn(app.rpc_call, sid, service, method, args, timeout) for sid in server_ids]
    gevent.joinall(calls)
    return {sid: call.get() for sid, call in zip(server_ids, calls)}


def call_each(app, server_ids, service, method, args, timeout=None):
    """The same call on several servers at once -> ({server_id: result}, {server_id: error}):
    one server down does not fail the others."""
    calls = [gevent.spawn(app.rpc_call, sid, service, method, args, timeout) for sid in server_ids]
    gevent.joinall(calls)
    results, errors = {}, {}
    for sid, job in zip(server_ids, calls):
        if job.successful():
            results[sid] = job.value
        else:
            errors[sid] = job.exception
    return results, errors


class RemoteMethod:
    __slots__ = ("_app", "_server_type", "_service", "_method")

    def __init__(self, app, server_type, service, method):
        self._app = app
        self._server_type = server_type
        self._service = service
        self._method = method

    def __call__(self, route_param, *args, timeout=None):
        """Call the server the router picks for ``route_param`` (a session or a key)."""
        app = self._app
        server_id = app.router.pick(self._server_type, route_param, None, self._route_name())
        return app.rpc_call(server_id, self._service, self._method, list(args), timeout)

    def _route_name(self):
        return "%s.%s" % (self._service, self._method)

    def to_server(self, server_id, *args, timeout=None):
        """Call one server by id, or every server of the type with ``"*"`` -> {id: result}."""
        app = self._app
        if server_id != "*":
            return app.rpc_call(server_id, self._service, self._method, list(args), timeout)
        servers = app.get_servers_by_type(self._server_type)
        if not servers:
            raise ServerGone("no %s server is up for %s.%s" % (self._server_type, self._service, self._method))
        return call_many(app, [s.id for s in servers], self._service, self._method,
                         list(args), timeout)

    def notify(self, route_param, *args):
        """Fire and forget; inside a transaction (app.db) it leaves only after the commit."""
        server_id = self._app.router.pick(self._server_type, route_param, None, self._route_name())
        after_commit(self._app.rpc_client.notify, server_id, self._service, self._method, list(args))


class _Remote:
    def __init__(self, app, server_type, service):
        self._app = app
        self._server_type = server_type
        self._service = service

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        rm = RemoteMethod(self._app, self._server_type, self._service, method)
        setattr(self, method, rm)
        return rm


class _ServerType:
    def __init__(self, app, server_type):
        self._app = app
        self._server_type = server_type

    def __getattr__(self, service):
        if service.startswith("_"):
            raise AttributeError(service)
        remote = _Remote(self._app, self._server_type, service)
        setattr(self, service, remote)
        return remote


class RpcProxy:
    def __init__(self, app):
        self._app = app

    def __getattr__(self, server_type):
        if server_type.startswith("_"):
            raise AttributeError(server_type)
        proxy = _ServerType(self._app, server_type)
        setattr(self, server_type, proxy)
        return proxy
