"""zpomelo.reload in real Applications (InProcessCluster on loopback): what a reload swaps
(handlers, remotes, crons with crons.json, app/routes), what a failed import leaves (the old code,
sys.modules as it was, the file and line of the error), and reloadOnChange."""
import json
import sys

import pytest

from zpomelo.reload import describe_error, reload_code
from zpomelo.testing import InProcessCluster, wait_until

pytestmark = pytest.mark.timeout(60)

HANDLER = '''
VERSION = {v}


def version(app, msg, session):
    return {{"v": VERSION}}
'''
REMOTE = '''
VERSION = {v}


def version(app):
    return VERSION
'''
CRON = '''
VERSION = {v}


def tick(app):
    ticks = app.settings.setdefault("ticks", {{}})
    ticks[VERSION] = ticks.get(VERSION, 0) + 1
'''
ROUTES = '''
VERSION = {v}


def remote(param, method, args):
    return param
'''


def _write(project, v, kinds=("handler", "remote", "cron", "routes")):
    game = project / "app" / "servers" / "game"
    files = {"handler": (game / "handler" / "gameHandler.py", HANDLER),
             "remote": (game / "remote" / "gameRemote.py", REMOTE),
             "cron": (game / "cron" / "gameCron.py", CRON),
             "routes": (project / "app" / "routes" / "game.py", ROUTES)}
    for kind in kinds:
        path, text = files[kind]
        path.write_text(text.format(v=v))
    return {kind: files[kind][0] for kind in kinds}


def _crons(project, entries):
    (project / "config" / "crons.json").write_text(json.dumps({"test": {"game": entries}}))


@pytest.fixture
def project(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "servers.json").write_text(json.dumps({"test": {
        "game": [{"id": "game-1", "host": "127.0.0.1", "port": 0}]}}))
    for kind in ("handler", "remote", "cron"):
        (tmp_path / "app" / "servers" / "game" / kind).mkdir(parents=True)
    (tmp_path / "app" / "routes").mkdir()
    _crons(tmp_path, [{"id": 1, "time": "* * * * * *", "action": "gameCron.tick"}])
    _write(tmp_path, 1)
    return tmp_path


def _answers(app):
    return {"handler": app.handler_service.routes["game.gameHandler.version"](app, {}, None)["v"],
            "remote": app.remotes.dispatch("gameRemote", "version", []),
            "routes": app.router.route_functions()["game"].module.VERSION}


def test_a_reload_swaps_handlers_remotes_crons_and_routes(project):
    with InProcessCluster(str(project)) as cluster:
        app = cluster["game-1"]
        assert _answers(app) == {"handler": 1, "remote": 1, "routes": 1}
        wait_until(lambda: app.get("ticks", {}).get(1, 0) >= 1, 5, message="a v1 tick")
        old_handler = app.handler_service.routes["game.gameHandler.version"]
        _write(project, 2)
        _crons(project, [{"id": 1, "time": "* * * * * *", "action": "gameCron.tick"},
                         {"id": 2, "time": "* * * * * *", "action": "gameCron.tick"}])
        summary = reload_code(app)
        assert summary == {"ok": True, "handlers": 1, "remotes": 1, "crons": 2,
                           "routes": ["game"]}
        assert _answers(app) == {"handler": 2, "remote": 2, "routes": 2}
        assert old_handler(app, {}, None) == {"v": 1}   # the old module is left as it was
        assert sorted(app.crons.crons) == [1, 2]
        wait_until(lambda: app.get("ticks", {}).get(2, 0) >= 4, 8, message="v2 ticks of both")
        ones = app.get("ticks")[1]
        wait_until(lambda: app.get("ticks")[2] >= 6, 8, message="more v2 ticks")
        assert app.get("ticks")[1] == ones              # v1 no longer runs


def test_crons_added_at_run_time_follow_the_new_code(project):
    _crons(project, [])
    with InProcessCluster(str(project)) as cluster:
        app = cluster["game-1"]
        app.add_crons([{"id": 7, "time": "* * * * * *", "action": "gameCron.tick"}])
        _write(project, 2, kinds=("cron",))
        assert reload_code(app)["crons"] == 1
        wait_until(lambda: app.get("ticks", {}).get(2, 0) >= 1, 5, message="a v2 tick")
        (project / "app" / "servers" / "game" / "cron" / "gameCron.py").write_text("VERSION = 3\n")
        failed = reload_code(app)   # the run-time cron's action is gone: nothing changes
        assert not failed["ok"] and "no public function tick" in failed["error"]["message"]
        assert app.crons.crons[7].fn.__globals__["VERSION"] == 2


def test_an_exception_at_import_keeps_the_old_code_and_names_file_and_line(project):
    with InProcessCluster(str(project)) as cluster:
        app = cluster["game-1"]
        modules = {n: m for n, m in sys.modules.items() if n.startswith("zpomelo_app.game.")}
        paths = _write(project, 2, kinds=("handler",))
        remote = project / "app" / "servers" / "game" / "remote" / "gameRemote.py"
        remote.write_text("VERSION = 2\n\nSETTINGS = {}\nLIMIT = SETTINGS['limit']\n")
        result = reload_code(app)
        assert result == {"ok": False, "error": {"file": str(remote), "line": 4,
                                                 "message": "KeyError: 'limit'"}}
        assert _answers(app) == {"handler": 1, "remote": 1, "routes": 1}
        assert {n: m for n, m in sys.modules.items()
                if n.startswith("zpomelo_app.game.")} == modules
        # a cron naming a function the new code lacks: crons.json is named
        _write(project, 2, kinds=("remote",))
        _crons(project, [{"id": 1, "time": "* * * * * *", "action": "gameCron.gone"}])
        result = reload_code(app)
        assert not result["ok"] and result["error"]["file"] == str(project / "config" /
                                                                  "crons.json")
        assert "no public function gone" in result["error"]["message"]
        assert _answers(app)["handler"] == 1 and paths


def test_describe_error_of_a_syntax_error(tmp_path):
    try:
        compile("def f(:\n", str(tmp_path / "x.py"), "exec")
    except SyntaxError as exc:
        error = describe_error(exc, str(tmp_path))
    assert error["file"] == str(tmp_path / "x.py") and error["line"] == 1
    assert error["message"].startswith("SyntaxError: ")


def test_reload_on_change_reloads_when_a_file_changes(project):
    (project / "app.py").write_text("def configure(app):\n    app.set('reloadOnChange', True)\n")
    with InProcessCluster(str(project)) as cluster:
        app = cluster["game-1"]
        assert _answers(app)["handler"] == 1
        _write(project, 2, kinds=("handler",))
        wait_until(lambda: _answers(app)["handler"] == 2, 10, message="reloaded on change")
        handler = project / "app" / "servers" / "game" / "handler" / "gameHandler.py"
        handler.write_text("def version(:\n")    # broken: logged, the v2 code keeps serving
        _write(project, 3, kinds=("remote",))
        wait_until(lambda: app._watcher.last["ok"] is False, 10, message="a failed reload")
        assert app._watcher.last["error"]["file"] == str(handler)
        assert _answers(app) == {"handler": 2, "remote": 1, "routes": 1}
        _write(project, 4, kinds=("handler",))       # fixed: both files are taken
        wait_until(lambda: app._watcher.last["ok"], 10, message="a reload after the fix")
        assert _answers(app) == {"handler": 4, "remote": 3, "routes": 1}
