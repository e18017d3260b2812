"""Finds and imports game code: handlers, remotes and lifecycle hooks of a project directory.

Layout: ``app/servers/<type>/handler/<name>.py`` serves routes ``<type>.<name>.<function>``;
``app/servers/<type>/remote/<name>.py`` serves ``app.rpc.<type>.<name>.<function>``.
Only public functions defined in the module itself are callable: no ``_private`` names, no
dunders, nothing imported from elsewhere, no classes.
"""
import ast
import importlib.util
import inspect
import logging
import os
import sys

from zpomelo.errors import ConfigError

logger = logging.getLogger(__name__)

HANDLER_DIR = "handler"
REMOTE_DIR = "remote"
LIFECYCLE_FILE = "lifecycle.py"


def servers_dir(base_dir):
    return os.path.join(base_dir, "app", "servers")


def is_public_name(name):
    return bool(name) and not name.startswith("_") and name.isidentifier()


def _module_files(directory):
    if not os.path.isdir(directory):
        return []
    return sorted(
        f for f in os.listdir(directory)
        if f.endswith(".py") and not f.startswith("_") and is_public_name(f[:-3])
    )


def _import_file(path, module_name, from_source=False):
    """A new module object for ``path``, registered in sys.modules as ``module_name``.

    ``from_source``: compile the file as it is now, never a cached .pyc (a hot reload: an edit
    that keeps the file's size within the same second would otherwise look unchanged)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        if from_source:
            with open(path, "rb") as f:
                source = f.read()
            exec(compile(source, path, "exec", dont_inherit=True), module.__dict__)
        else:
            spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ConfigError("cannot import %s: %s: %s" % (path, type(exc).__name__, exc)) from exc
    return module


def public_functions(module):
    """The routable functions of a module: public, defined in it, plain functions."""
    found = {}
    for name, value in vars(module).items():
        if not is_public_name(name) or not inspect.isfunction(value):
            continue
        if value.__module__ != module.__name__ or value.__name__ != name:
            continue  # imported from elsewhere, an alias or a lambda: only `def name` is routable
        found[name] = value
    return found


def load_services(base_dir, server_type, kind, from_source=False):
    """Import every ``<kind>/*.py`` of one server type: {file name: {function name: function}}."""
    directory = os.path.join(servers_dir(base_dir), server_type, kind)
    services = {}
    for filename in _module_files(directory):
        name = filename[:-3]
        module_name = "zpomelo_app.%s.%s.%s" % (server_type, kind, name)
        module = _import_file(os.path.join(directory, filename), module_name, from_source)
        services[name] = public_functions(module)
        logger.debug("loaded %s %s.%s: %s", kind, server_type, name, sorted(services[name]))
    return services


def load_lifecycle(base_dir, server_type):
    path = os.path.join(servers_dir(base_dir), server_type, LIFECYCLE_FILE)
    if not os.path.isfile(path):
        return None
    return _import_file(path, "zpomelo_app.%s.lifecycle" % server_type)


def load_app_module(base_dir):
    """The project's optional ``app.py`` (its ``configure(app)`` runs in every server)."""
    path = os.path.join(base_dir, "app.py")
    if not os.path.isfile(path):
        return None
    return _import_file(path, "zpomelo_app.app_%x" % (abs(hash(os.path.abspath(base_dir))),))


def _public_function_names(path):
    """Public top-level function names of a file, read with ast (no import)."""
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), filename=path)
    return [
        node.name for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_public_name(node.name)
    ]


def scan_handler_routes(base_dir):
    """Every handler route of every server type, found without importing other types' code.

    Used to build the route dictionary, which must be identical on every frontend.
    """
    root = servers_dir(base_dir)
    routes = []
    if not os.path.isdir(root):
        return routes
    for server_type in sorted(os.listdir(root)):
        directory = os.path.join(root, server_type, HANDLER_DIR)
        for filename in _module_files(directory):
            try:
                names = _public_function_names(os.path.join(directory, filename))
            except SyntaxError as exc:
                raise ConfigError("cannot parse %s: %s" % (os.path.join(directory, filename), exc)) from exc
            routes.extend("%s.%s.%s" % (server_type, filename[:-3], n) for n in names)
    return sorted(routes)
