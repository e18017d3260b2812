"""The pytest plugin, run in an inner pytest: where it finds the project, what its fixtures give,
and the clear failures (no project, a remote call the test did not answer)."""
import os

import pytest

from zpomelo.testing.plugin_loading import plugin_if_not_installed

pytestmark = pytest.mark.timeout(120)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER_APP = os.path.join(ROOT, "tests", "apps", "cluster")


def run(pytester, *args):
    plugin = [arg for name in plugin_if_not_installed() for arg in ("-p", name)]
    return pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", *plugin, *args)


def test_the_ini_option_names_the_project_and_the_fixtures_run_it(pytester):
    pytester.makeini("[pytest]\nzpomelo_project = %s\n" % os.path.relpath(CLUSTER_APP, pytester.path))
    pytester.makepyfile(test_game="""
        def test_cluster_and_clients(cluster, connect, client):
            assert {"chat-1", "chat-2", "connector-1", "connector-2"} <= set(cluster.apps)
            assert client.request("connector.entryHandler.echo", {"x": 1})["server"] == "connector-1"
            other = connect("connector-2", "ws")
            assert other.request("connector.entryHandler.echo", {"y": 2})["server"] == "connector-2"

        def test_fake_app(fake_app, fake_session):
            app = fake_app("connector-1")
            assert app.server_type == "connector" and fake_session.uid is None
    """)
    result = run(pytester)
    result.assert_outcomes(passed=2)


def test_a_marker_chooses_the_project_and_servers(pytester):
    """A relative project path in the marker is taken from the test file's directory."""
    pytester.makepyfile(test_game="""
        import pytest

        @pytest.mark.zpomelo(project=%r, only=["connector-1"])
        def test_one_server(cluster):
            assert list(cluster.apps) == ["connector-1"]
    """ % os.path.relpath(CLUSTER_APP, pytester.path))
    run(pytester).assert_outcomes(passed=1)


def test_the_rootdir_of_a_game_project_needs_no_setting(pytester):
    (pytester.path / "config").mkdir()
    (pytester.path / "config" / "servers.json").write_text(
        '{"test": {"connector": [{"id": "c-1", "host": "127.0.0.1", "port": 0, "clientPort": 0,'
        ' "frontend": true}]}}')
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_game="""
        def test_it(cluster, client):
            assert list(cluster.apps) == ["c-1"]
            assert client.request("c.nothing.here", {})["code"] == 500
    """)
    run(pytester).assert_outcomes(passed=1)


def test_without_a_project_the_error_says_how_to_name_one(pytester):
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_game="""
        def test_it(cluster):
            pass
    """)
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*zpomelo fixtures need a game project: set zpomelo_project*"])


def test_a_swallowed_unexpected_remote_call_fails_the_test(pytester):
    pytester.makepyfile(test_game="""
        def test_it(fake_app):
            app = fake_app(server_type="chat", servers=[
                {"id": "area-1", "serverType": "area", "host": "127.0.0.1", "port": 0}])
            try:
                app.rpc.area.areaRemote.join.to_server("area-1", "ann")
            except Exception:
                pass    # game code that hides errors
    """)
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*remote calls without an answer*", "*area.areaRemote.join*"])


def test_a_module_scoped_cluster_is_shared_and_clients_are_per_test(pytester):
    pytester.makeini("[pytest]\nzpomelo_project = %s\nzpomelo_cluster_scope = module\n" % CLUSTER_APP)
    pytester.makepyfile(test_game="""
        seen = []

        def test_first(cluster, client):
            seen.append((id(cluster), client))

        def test_second(cluster, client):
            first_cluster, first_client = seen[0]
            assert id(cluster) == first_cluster
            assert not first_client.is_open
    """)
    run(pytester).assert_outcomes(passed=2)


def test_a_project_made_by_zpomelo_init_is_tested_as_it_is(pytester):
    """No test environment and fixed ports in servers.json: development, every port bound to 0."""
    import subprocess
    import sys
    subprocess.run([sys.executable, "-m", "zpomelo.cli", "init", str(pytester.path / "game")],
                   check=True, capture_output=True, timeout=60)
    pytester.makeini("[pytest]\nzpomelo_project = game\n")
    pytester.makepyfile(test_game="""
        def test_login(cluster, connect):
            assert cluster["connector-server-1"].env == "development"
            reply = connect("connector-server-1").request("connector.entryHandler.entry", {"uid": "ann"})
            assert reply == {"code": 200, "uid": "ann", "game": "game-server-1"}

        def test_login_unit(fake_app, fake_session):
            app = fake_app("connector-server-1")
            app.stub_rpc("game.gameRemote.join", "game-server-1")
            reply = app.request("connector.entryHandler.entry", {"uid": "ann"}, fake_session)
            assert reply["game"] == "game-server-1" and fake_session.uid == "ann"
    """)
    run(pytester).assert_outcomes(passed=2)


def test_process_cluster_runs_the_project_as_processes(pytester):
    pytester.makeini("[pytest]\nzpomelo_project = %s\n" % CLUSTER_APP)
    pytester.makepyfile(test_game="""
        from zpomelo.client import Client

        def test_it(process_cluster):
            rows = process_cluster.servers()
            client = Client.connect("127.0.0.1", rows["connector-2"]["clientPort"])
            assert client.request("connector.entryHandler.echo", {})["server"] == "connector-2"
            client.close()
    """)
    run(pytester).assert_outcomes(passed=1)


def test_the_readme_examples_pass_against_the_chat_example(pytester):
    """The code of README's "Testing your game" runs as written (against examples/chat)."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme.split("## Testing your game", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]
    assert len(blocks) == 2
    pytester.makeini("[pytest]\nzpomelo_project = %s\n" % os.path.join(ROOT, "examples", "chat"))
    pytester.makepyfile(test_readme="\n\n".join(blocks))
    run(pytester).assert_outcomes(passed=3)


def test_fake_app_takes_a_project_named_by_the_test_over_the_ini(pytester):
    pytester.makeini("[pytest]\nzpomelo_project = %s\n" % CLUSTER_APP)
    pytester.makepyfile(test_game="""
        def test_it(fake_app):
            chat = fake_app("chat-server-1", project_dir=%r)
            assert chat.env == "test" and chat.server_type == "chat"
            assert fake_app("connector-1").server_type == "connector"
    """ % os.path.join(ROOT, "examples", "chat"))
    run(pytester).assert_outcomes(passed=1)
