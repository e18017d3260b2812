"""What game code calls on the Application (Pomelo's app API): settings, filters, routes,
components, crons, the cluster view and pushes to players.

A base of ``Application`` kept apart from it because it only records what app.py's
``configure`` asks for; application.py turns that into running services at start.
"""
from zpomelo import rpc_proxy, settings


def env_matches(spec, env):
    """Whether a configure() or config entry for ``spec`` ("all", "a|b", ...) applies to env."""
    return spec in (None, "", "all") or env in str(spec).split("|")


def type_matches(spec, server_type):
    return spec in (None, "", "all") or server_type in str(spec).split("|")


class AppApi:
    """Needs the Application's settings, filters, global_filters, rpc_filters, components,
    router, crons, membership, players and handler_service."""

    # -- settings and configuration (Pomelo's surface) ---------------------------------
    def get(self, key, default=None):
        return self.settings.get(key, default)

    def set(self, key, value):
        self.settings[key] = value
        return self

    def enable(self, key):
        self.settings[key] = True
        return self

    def disable(self, key):
        self.settings[key] = False
        return self

    def enabled(self, key):
        return bool(self.settings.get(key))

    def setting(self, name):
        """A declared setting (zpomelo.settings): the value set, converted, or its default."""
        return settings.value(self.settings, name)

    def configure(self, *args):
        """configure(fn) | configure(env, fn) | configure(env, server_type, fn): run fn now if it applies."""
        fn = args[-1]
        env = args[0] if len(args) > 1 else None
        server_type = args[1] if len(args) > 2 else None
        if env_matches(env, self.env) and type_matches(server_type, self.server_type):
            fn()
        return self

    def route(self, server_type, fn):
        """fn(route_param, msg, app) -> server id; route_param is the session for forwarded requests."""
        self.router.set_route(server_type, fn)
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

    def global_before(self, f):
        """On a frontend, before every client request is forwarded or handled: ``before(route,
        msg, session)`` returns None to go on or a body that answers (refuses) the request."""
        self.global_filters.add_before(f)
        return self

    def global_after(self, f):
        """On a frontend, ``after(route, msg, session, response, error)`` sees every answer."""
        self.global_filters.add_after(f)
        return self

    def global_filter(self, f):
        """An object with global ``before`` and/or ``after`` (Pomelo's app.globalFilter)."""
        self.global_filters.add(f)
        return self

    def rpc_filter(self, f):
        """An object with before(server_id, service, method, args) and/or after(..., result, error)."""
        self.rpc_filters.append(f)
        return self

    def set_error_handler(self, fn):
        """fn(app, exc, route, msg, session) -> response body (or None for the default)."""
        self.error_handler = fn
        if self.handler_service is not None:
            self.handler_service.error_handler = fn
        return self

    def load(self, component):
        self.components.append(component)
        return self

    def add_crons(self, entries):
        """Crons at run time, in crons.json's format [{"id", "time", "action"[, "serverId"]}]."""
        return self.crons.add(entries)

    def remove_crons(self, ids):
        return self.crons.remove(ids)

    # -- cluster view ----------------------------------------------------------------
    def get_servers_by_type(self, server_type):
        return self.membership.by_type(server_type)

    def get_server(self, server_id):
        return self.membership.get(server_id)

    @property
    def servers(self):
        return dict(self.membership.servers)

    # -- players (zpomelo.players) -----------------------------------------------------
    def push_to_uids(self, uids, route, msg):
        """Push to these players wherever they are connected; returns the uids not reached
        (offline, or unreachable: their frontend or directory owner down). [] = all reached."""
        return self.players.push_to_uids(uids, route, msg)

    def push_to_uid(self, uid, route, msg):
        """Push to one player wherever it is connected; False when it is not online."""
        return not self.players.push_to_uids([uid], route, msg)

    def rpc_call(self, server_id, service, method, args, timeout=None):
        """One remote call with the RPC filters around it (zpomelo.rpc_proxy.call)."""
        return rpc_proxy.call(self, server_id, service, method, args, timeout)
