"""Master failover time over repeated kills: a real ZooKeeper, the chat example with two masters.

    python tests/bench/bench_failover.py [--kills 10] [--session-timeout 2] [--clients 4]

Starts a standalone ZooKeeper (Debian's zookeeper package) and the chat example (gate, two
connectors, two chat servers) with masterHA and one standby, puts a light chat load on it, then
`--kills` times: SIGKILL the leading master, and measure
  - elected: kill -> the new leader's record in ZooKeeper (the standby won and claimed the epoch);
  - adopted: kill -> `zpomelo list` through the new leader shows every server running, same pids;
then bring the killed master back as a standby (`zpomelo masterha -i <id>`) for the next round.
Prints median and max of both, and the chat requests that failed (expected: none). Expect
elected ~ sessionTimeout + a few hundred ms: ZooKeeper must expire the dead leader's session.
"""
import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))            # tests/: the fixtures and harness
sys.path.insert(0, str(HERE.parent.parent))     # the repository

from ha import conftest as ha_conftest  # noqa: E402
from ha.harness import ChatLoad, LeaderWatch, ok, rows  # noqa: E402
from master.cli_project import kill_project  # noqa: E402
from zookeeper_server import ZooKeeperServer  # noqa: E402
from zpomelo.testing import wait_until  # noqa: E402

SERVERS = ["gate-server-1", "connector-server-1", "connector-server-2", "chat-server-1",
           "chat-server-2"]


def all_back(base, pids, leader_id):
    table = rows(base)
    return leader_id in table and all(
        table.get(sid, {}).get("state") == "running" and table[sid]["pid"] == pid
        for sid, pid in pids.items())


def run(args):
    tmp = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    zk = ZooKeeperServer(tmp / "zookeeper").start()
    ha_conftest.SESSION_TIMEOUT = args.session_timeout
    base = ha_conftest.write_ha_project(tmp / "chat", zk.hosts)
    master_json = base / "config" / "master.json"
    conf = json.loads(master_json.read_text())
    conf[ha_conftest.ENV]["masterHA"]["sessionTimeout"] = args.session_timeout
    master_json.write_text(json.dumps(conf))
    elected, adopted = [], []
    load = None
    try:
        ok(base, "start", "-D")
        watch = LeaderWatch(base)
        wait_until(lambda: watch.leader, 10)
        table = rows(base)
        pids = {sid: table[sid]["pid"] for sid in SERVERS}
        load = ChatLoad(table["gate-server-1"]["clientPort"], clients=args.clients).start()
        load.wait_more(50)
        for n in range(args.kills):
            old = watch.leader
            t0 = time.monotonic()
            os.kill(old["pid"], signal.SIGKILL)
            seen, new = watch.wait_epoch_above(old["epoch"], args.session_timeout + 20)
            elected.append(seen - t0)
            wait_until(lambda: all_back(base, pids, new["id"]), 30, interval=0.05)
            adopted.append(time.monotonic() - t0)
            print("kill %2d: %s -> %s (epoch %d): elected %.2f s, servers adopted %.2f s, "
                  "chat ok %d, failed %d" % (n + 1, old["id"], new["id"], new["epoch"],
                                             elected[-1], adopted[-1], load.ok,
                                             len(load.failures)), flush=True)
            out = ok(base, "masterha", "-i", old["id"])     # the killed master stands by again
            assert "started" in out, out
            load.wait_more(20)
        load.stop()
        ok(base, "stop")
    finally:
        if load is not None:
            load.stop()
        kill_project(base)
        zk.stop()
    print()
    print("session timeout %.1f s, %d kills" % (args.session_timeout, args.kills))
    print("elected: median %.2f s, max %.2f s" % (statistics.median(elected), max(elected)))
    print("adopted: median %.2f s, max %.2f s" % (statistics.median(adopted), max(adopted)))
    print("chat requests: %d ok, %d failed" % (load.ok, len(load.failures)))
    return {"session_timeout": args.session_timeout, "elected": elected, "adopted": adopted,
            "chat_ok": load.ok, "chat_failed": len(load.failures)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--session-timeout", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--json", help="also write the raw numbers to this file")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
