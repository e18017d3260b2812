"""Declared settings: one default each, converted values, misspellings refused by name."""
import logging
import os

import pytest

from zpomelo import settings
from zpomelo.application import Application
from zpomelo.config import load_servers
from zpomelo.connector.config import ConnectorConfig
from zpomelo.errors import ConfigError
from zpomelo.frontend import FrontendService
from zpomelo.rpc.client import DEFAULT_TIMEOUT
from zpomelo.rpc.server import DEFAULT_POOL_SIZE

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "apps", "cluster")

pytestmark = pytest.mark.timeout(30)


def test_every_setting_is_declared_once_with_one_default():
    names = [(s.scope, s.name) for s in settings.declared(settings.APP)
             + settings.declared(settings.CONNECTOR)]
    assert len(names) == len(set(names))
    # the RPC layers take their defaults from the declarations instead of repeating numbers
    assert DEFAULT_TIMEOUT == settings.default("rpcTimeout") == 10.0
    assert DEFAULT_POOL_SIZE == settings.default("rpcPoolSize")


def test_values_are_converted_and_bad_ones_named():
    assert settings.value({"rpcTimeout": "2.5"}, "rpcTimeout") == 2.5
    assert settings.value({}, "drainTimeout") == settings.default("drainTimeout")
    assert settings.value({"exposeErrors": "false"}, "exposeErrors") is False
    assert settings.value({}, "exposeErrors", fallback=True) is True
    with pytest.raises(ConfigError, match="'rpcPoolSize' must be an integer, got 'many'"):
        settings.value({"rpcPoolSize": "many"}, "rpcPoolSize")


def test_a_misspelled_connector_setting_names_the_close_match():
    with pytest.raises(ConfigError, match="'hearbeat'.*did you mean 'heartbeat'"):
        ConnectorConfig.from_pomelo({"hearbeat": 3})
    with pytest.raises(ConfigError, match="did you mean 'maxInFlight'"):
        ConnectorConfig.from_pomelo({"maxinflight": 3})


def test_an_unknown_connector_setting_without_a_match_is_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="zpomelo.settings"):
        config = ConnectorConfig.from_pomelo({"connector": "pomelo.connectors.hybridconnector"})
    assert "unknown connectorConfig key 'connector' is ignored" in caplog.text
    assert config.max_in_flight == settings.default("maxInFlight", settings.CONNECTOR)


def test_the_frontend_reads_the_parsed_connector_config():
    record = next(r for r in load_servers(APP_DIR, "test") if r.frontend)
    app = Application(APP_DIR, "test", record)
    app.set("rpcTimeout", 4)
    app.set("connectorConfig", {"heartbeat": 3, "maxInFlight": "7", "singleSession": "true",
                                "handlerPoolSize": 5})
    frontend = FrontendService(app)
    config = frontend.connector_config
    assert config.heartbeat == 3 and isinstance(config.heartbeat, int)  # handshake JSON says 3
    assert frontend.max_in_flight == 7 and config.single_session is True
    assert frontend.forward_timeout == 4          # forwardTimeout falls back to rpcTimeout
    assert frontend.pool.size == 5


def test_a_misspelled_app_setting_stops_the_start_with_a_clear_error():
    record = next(r for r in load_servers(APP_DIR, "test") if not r.frontend)
    app = Application(APP_DIR, "test", record)
    app.set("rpcTimout", 3)
    app.set("myGameTable", {"x": 1})  # the game's own values are fine
    with pytest.raises(ConfigError, match="app.set\\('rpcTimout', ...\\): did you mean 'rpcTimeout'"):
        app.start()
    assert app.rpc_server is None  # nothing was bound


def test_the_config_readme_table_lists_every_declared_setting():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "config", "README.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for scope in (settings.APP, settings.CONNECTOR):
        for s in settings.declared(scope):
            default = s.default
            shown = ("`%s`" % (str(default).lower() if isinstance(default, bool) else default)
                     if default is not None else "none")
            assert "| `%s` | %s | %s |" % (s.name, shown, s.doc) in text, s.name
