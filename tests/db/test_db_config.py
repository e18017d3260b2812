"""config/db.json and app.set("db", ...): which store a server opens, and clear errors."""
import json

import pytest

from zpomelo.db.config import load_options
from zpomelo.errors import ConfigError


def write(tmp_path, data):
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "db.json").write_text(json.dumps(data))


def test_no_file_no_store(tmp_path):
    assert load_options(str(tmp_path), "development") is None


def test_keyed_by_environment(tmp_path):
    write(tmp_path, {"production": {"engine": "redis", "url": "redis://h:1/0"}, "staging": {}})
    assert load_options(str(tmp_path), "production")["url"] == "redis://h:1/0"
    assert load_options(str(tmp_path), "development") is None


def test_flat_file_and_app_override(tmp_path):
    write(tmp_path, {"engine": "sqlite", "path": "x.db"})
    options = load_options(str(tmp_path), "development", {"lockTimeout": 1})
    assert (options["path"], options["lockTimeout"], options["maxRetries"]) == ("x.db", 1, 100)
    assert load_options(str(tmp_path), "development", None)["lockTimeout"] == 5.0


def test_misspelled_field_and_unknown_engine_are_refused(tmp_path):
    write(tmp_path, {"engine": "sqlite", "lockTimout": 3})
    with pytest.raises(ConfigError, match="did you mean 'lockTimeout'"):
        load_options(str(tmp_path), "development")
    write(tmp_path, {"engine": "mongodb"})
    with pytest.raises(ConfigError, match="sqlite, redis"):
        load_options(str(tmp_path), "development")
    with pytest.raises(ConfigError, match="takes a dict"):
        load_options(str(tmp_path), "development", "sqlite")
