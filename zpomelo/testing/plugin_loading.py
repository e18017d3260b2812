"""Loading the pytest plugin from a conftest when the installed metadata does not register it."""
from importlib.metadata import entry_points

PLUGIN = "zpomelo.testing.plugin"


def plugin_if_not_installed():
    """``pytest_plugins`` for a conftest: the plugin, unless an entry point already loads it."""
    if any(ep.value == PLUGIN for ep in entry_points(group="pytest11")):
        return []
    return [PLUGIN]
