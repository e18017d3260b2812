"""Measure how long `zpomelo start -D` takes for a cluster of N real servers.

    python tests/master/measure_start.py [N] [RUNS]

Makes a `zpomelo init` project with 1 gate, N//2 - 1 connectors and the rest game servers (all on
free ports), then per run: start -D (the master reports the time from its start until every
server registered; the command's wall time adds the master's own start-up), list, stop.
"""
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from master.cli_project import kill_project, ok, project_pids, use_free_ports  # noqa: E402


def make_project(root, count):
    base = Path(root) / "game"
    ok(root, "init", base)
    connectors = max(1, count // 2 - 1)
    games = count - 1 - connectors
    servers = {
        "gate": [{"id": "gate-server-1", "host": "127.0.0.1", "port": 0, "clientPort": 0,
                  "frontend": True}],
        "connector": [{"id": "connector-server-%d" % i, "host": "127.0.0.1", "port": 0,
                       "clientPort": 0, "frontend": True} for i in range(1, connectors + 1)],
        "game": [{"id": "game-server-%d" % i, "host": "127.0.0.1", "port": 0}
                 for i in range(1, games + 1)],
    }
    (base / "config" / "servers.json").write_text(json.dumps({"development": servers}))
    use_free_ports(base)
    return base


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as root:
        base = make_project(root, count)
        try:
            for run in range(runs):
                t0 = time.monotonic()
                report = json.loads(ok(base, "start", "-D", "--json"))
                wall = time.monotonic() - t0
                rows = json.loads(ok(base, "list", "--json"))
                up = sum(1 for r in rows if r["state"] == "running") - 1
                ok(base, "stop")
                assert up == count and not project_pids(base), (up, project_pids(base))
                print("run %d: %d servers registered %.2f s after the master started; "
                      "`zpomelo start -D` returned after %.2f s" % (run + 1, up,
                                                                   report["elapsed"], wall))
        finally:
            kill_project(base)


if __name__ == "__main__":
    main()
