"""quick-pomelo's routing convention: ``app/routes/<serverType>.py`` picks each entity's server.

```python
# app/routes/area.py
def handler(session, route, msg):     # a client request for area.*: the routing key
    return session.get("areaId")
def remote(param, method, args):      # app.rpc.area.<remote>.<method>(param, ...): the key
    return param
```
The key is hashed (crc32) over the live servers of the type in id order, so one entity (an
area, a player) always lands on the same server while membership is stable. That keeps its
locks and cached documents on one server: transactions on it wait in line instead of
conflicting across servers. Correctness does not depend on it (the store checks versions).
Either function may be left out (the default key: the session's uid, or the RPC's param).
"""
import os

from zpomelo.router import crc32_key, default_route_key
from zpomelo.errors import ServerGone


def load_routes(base_dir, from_source=False):
    """{server type: module} for every app/routes/<type>.py of the project."""
    from zpomelo.loader import _import_file, _module_files
    directory = os.path.join(base_dir, "app", "routes")
    found = {}
    for filename in _module_files(directory):
        server_type = filename[:-3]
        found[server_type] = _import_file(os.path.join(directory, filename),
                                          "zpomelo_app_routes_%s" % server_type, from_source)
    return found


def route_function(module, server_type):
    handler = getattr(module, "handler", None)
    remote = getattr(module, "remote", None)

    def pick(param, msg, app, route=None):
        if hasattr(param, "frontend_id"):  # a session: a forwarded client request
            key = handler(param, route, msg) if handler else default_route_key(param)
        else:
            key = remote(param, route, msg) if remote else param
        servers = app.get_servers_by_type(server_type)
        if not servers:
            raise ServerGone("no %s server is up" % server_type)
        return servers[crc32_key(key) % len(servers)].id
    pick.with_route = True
    pick.module = module
    pick.from_routes_file = True     # replaced by a reload; app.route() functions are not
    return pick


def install_routes(app):
    """``app.route(type, ...)`` for each routes file, unless app.py already routed that type."""
    installed = []
    for server_type, module in load_routes(app.base_dir).items():
        if server_type in app.router._route_fns:
            continue  # an explicit app.route() in app.py wins
        app.route(server_type, route_function(module, server_type))
        installed.append(server_type)
    return installed


def reloaded_route_functions(app):
    """The router's functions with every routes file imported again (zpomelo.reload).

    Raises what the import raises; nothing is changed until the caller swaps the result in.
    Functions set with ``app.route()`` stay; a type whose routes file is gone loses its route."""
    fns = {server_type: fn for server_type, fn in app.router.route_functions().items()
           if not getattr(fn, "from_routes_file", False)}
    for server_type, module in load_routes(app.base_dir, from_source=True).items():
        if server_type not in fns:
            fns[server_type] = route_function(module, server_type)
    return fns
