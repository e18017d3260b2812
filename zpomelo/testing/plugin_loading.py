"""Loading the pytest plugin from a conftest when the installed metadata does not register it."""
from importlib.metadata import distributions

PLUGIN = "zpomelo.testing.plugin"


def plugin_if_not_installed():
    """``pytest_plugins`` for a conftest: the plugin, unless an entry point already loads it.

    Looks at every distribution on the path, as pytest does when it loads entry points (a
    checkout's own zpomelo.egg-info and the venv's metadata may disagree).
    """
    for dist in distributions():
        for entry in dist.entry_points:
            if entry.group == "pytest11" and entry.value == PLUGIN:
                return []
    return [PLUGIN]
