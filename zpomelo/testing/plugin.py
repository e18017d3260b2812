"""pytest fixtures for a zpomelo game, registered by installing zpomelo (entry point ``pytest11``).

Which project the fixtures run, first found wins:
1. ``@pytest.mark.zpomelo(project="...", env="...", only=[server ids])`` on the test or module
   (a relative path is taken from the test file's directory);
2. the ``zpomelo_project`` fixture, if a conftest overrides it;
3. ``zpomelo_project = <dir>`` in the pytest ini file (relative to that file);
4. the rootdir, when it holds ``config/servers.json`` (a project made by ``zpomelo init``).
The environment is the marker's ``env``, else ``zpomelo_env``, else ``test`` when servers.json has
it and ``development`` when not (the cluster binds every port to 0, so a development config
serves for tests). ``zpomelo_cluster_scope = module`` shares one cluster among a module's tests
(the clients are still closed after each test).

Fixtures: ``cluster`` (an InProcessCluster of the project, stopped at teardown), ``connect``
(``connect(server_id=None, transport="tcp", **options)`` -> a real zpomelo.client on a frontend),
``client`` (one client on the first frontend), ``process_cluster`` (the project as real processes
under the master, run from a copy with every port 0, nothing left running after), ``fake_app`` (``fake_app(server_id)`` -> a FakeApp
of one server of the project, or ``fake_app(server_type=...)`` without one) and ``fake_session``.
"""
import json
import os

import pytest

MARKER = "zpomelo"


def pytest_addoption(parser):
    parser.addini("zpomelo_project", "the game project (directory with config/servers.json) the "
                  "zpomelo fixtures run; relative to the ini file", default="")
    parser.addini("zpomelo_env", "the servers.json environment the zpomelo fixtures run "
                  "(default: test if the project has it, else development)", default="")
    parser.addini("zpomelo_cluster_scope", "scope of the cluster fixture: function (default) or "
                  "module", default="function")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "zpomelo(project=None, env=None, only=None): the project directory, "
                   "environment and server ids the zpomelo fixtures (cluster, fake_app) use")


def _marker(request):
    marker = request.node.get_closest_marker(MARKER)
    return marker.kwargs if marker is not None else {}


def _from_test_file(request, path):
    base = os.path.dirname(str(request.node.path)) if request.node.path.is_file() else str(request.node.path)
    return os.path.normpath(os.path.join(base, path))


@pytest.fixture(scope="session")
def zpomelo_project(pytestconfig):
    """The project directory from the ini option or the rootdir (None when neither names one)."""
    configured = pytestconfig.getini("zpomelo_project")
    if configured:
        base = pytestconfig.inipath.parent if pytestconfig.inipath else pytestconfig.rootpath
        return os.path.normpath(os.path.join(str(base), configured))
    root = str(pytestconfig.rootpath)
    if os.path.isfile(os.path.join(root, "config", "servers.json")):
        return root
    return None


@pytest.fixture(scope="session")
def zpomelo_env(pytestconfig):
    """The environment from the ini option (None: chosen from the project's servers.json)."""
    return pytestconfig.getini("zpomelo_env") or None


def default_env(project):
    """``test`` if the project's servers.json has that environment, else ``development``."""
    if os.path.isfile(os.path.join(project, "config", "test", "servers.json")):
        return "test"
    try:
        with open(os.path.join(project, "config", "servers.json"), encoding="utf-8") as f:
            environments = json.load(f)
    except (OSError, ValueError):
        return "test"  # let the cluster report what is wrong with the file
    return "test" if not isinstance(environments, dict) or "test" in environments else "development"


def _project_and_env(request, project, env):
    options = _marker(request)
    if options.get("project"):
        project = _from_test_file(request, str(options["project"]))
    if project is None:
        raise pytest.UsageError(
            "the zpomelo fixtures need a game project: set zpomelo_project = <dir> in the pytest "
            "ini file, mark the test @pytest.mark.zpomelo(project=...), or override the "
            "zpomelo_project fixture in a conftest.py")
    return project, options.get("env") or env or default_env(project)


def _cluster_scope(fixture_name, config):
    scope = config.getini("zpomelo_cluster_scope") or "function"
    if scope not in ("function", "class", "module", "package", "session"):
        raise pytest.UsageError("zpomelo_cluster_scope must be a pytest scope, not %r" % scope)
    return scope


@pytest.fixture(scope=_cluster_scope)
def cluster(request, zpomelo_project, zpomelo_env):
    """Every server of the project's environment, started in this process on free ports."""
    from zpomelo.testing.cluster import InProcessCluster
    project, env = _project_and_env(request, zpomelo_project, zpomelo_env)
    with InProcessCluster(project, env, only=_marker(request).get("only")) as started:
        yield started


@pytest.fixture
def connect(cluster):
    """``connect(server_id=None, transport="tcp", **options)``: a real client connected to a
    frontend (the first one by default); every client is closed after the test."""
    opened = []

    def _connect(server_id=None, transport="tcp", **options):
        client = cluster.connect(server_id, transport, **options)
        opened.append(client)
        return client

    yield _connect
    for client in opened:
        if client in cluster.clients:
            cluster.clients.remove(client)
        client.close()


@pytest.fixture
def client(connect):
    """One client connected over TCP to the cluster's first frontend."""
    return connect()


@pytest.fixture
def process_cluster(request, tmp_path, zpomelo_project, zpomelo_env):
    """The project as real processes (``zpomelo start -D``), run from a copy in ``tmp_path`` whose
    ports are all 0; stopped after the test with every process gone."""
    from zpomelo.testing.process_cluster import ProcessCluster, copy_project
    project, env = _project_and_env(request, zpomelo_project, zpomelo_env)
    copy = copy_project(project, tmp_path / "zpomelo-project", env)
    with ProcessCluster(copy, env) as started:
        yield started


@pytest.fixture
def fake_app(request, zpomelo_project, zpomelo_env):
    """``fake_app(server_id=None, **options)``: a FakeApp for one server of the project (or, with
    ``server_type=...``, a bare one). Fails the test if game code swallowed an UnexpectedCall."""
    from zpomelo.testing.fake_app import FakeApp
    made = []

    def _fake_app(server_id=None, **options):
        env = options.pop("env", None) or zpomelo_env
        if "project_dir" in options:       # named by the test: it wins over marker and ini
            project = options.pop("project_dir")
            app = FakeApp(project, server_id, env=env or default_env(project), **options)
        elif "server_type" in options:     # a bare server, no project
            app = FakeApp(server_id=server_id, env=env or "test", **options)
        else:
            project, env = _project_and_env(request, zpomelo_project, env)
            app = FakeApp(project, server_id, env=env, **options)
        made.append(app)
        return app

    yield _fake_app
    swallowed = [str(e) for app in made for e in app.unexpected]
    if swallowed:
        pytest.fail("remote calls without an answer (clear app.unexpected if the test expected "
                    "them):\n" + "\n".join(swallowed), pytrace=False)


@pytest.fixture
def fake_session():
    """A FakeSession with no uid yet, as a new client's session."""
    from zpomelo.testing.fake_session import FakeSession
    return FakeSession()
