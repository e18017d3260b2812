"""Plugins for our own suite: pytester (tests of the zpomelo plugin) and the zpomelo plugin.

Installing zpomelo registers its plugin (entry point pytest11); a checkout whose install predates
the entry point loads it here instead (loading it both ways would register it twice).
"""
from zpomelo.testing.plugin_loading import plugin_if_not_installed

pytest_plugins = ["pytester"] + plugin_if_not_installed()
