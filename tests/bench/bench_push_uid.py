"""Push by uid against channel push, in the same run: throughput, server CPU per push, who saturated.

    python tests/bench/bench_push_uid.py [--runs 3] [--players 200] [--pushes 10000] [--fanouts 1,20]
                                         [--concurrency 50] [--out tests/bench/results/push_uid.json]

A real cluster (tests/bench/bench_players_app: connector-1, connector-2, area-1 under the master)
and --players clients (TCP, half on each connector) logged in with their own uid. For each fanout
F and each round, area-1 sends the same pushes to the same players twice, the modes alternating:
- ``uid``: ``app.push_to_uids(F uids, ...)``: one directory lookup (an RPC to the uids' owner
  frontends, in parallel when they differ) then the push over the bus;
- ``channel``: ``channel.push(...)`` to a channel holding those F uids (no lookup).
--concurrency greenlets issue the pushes on area-1 (a lookup waits on its round trip, so one
greenlet would measure latency, not throughput). A phase ends when every client got every push.

Reported per phase: deliveries/s (pushes x F received by the clients / wall time), pushes/s,
server CPU per push (the servers' CPU seconds, from /proc, / pushes), each process's CPU share of
the wall time (the busiest process, and whether it saturated: about 1.0 of a core; the bench
clients count too, they run in this process), lookups per directory call (concurrent lookups
for one owner share a call) and pushes lost. The machine is shared (2 cores): compare the modes of one run.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time

import gevent

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from zpomelo.client import Client  # noqa: E402
from zpomelo.testing import ProcessCluster, wait_until  # noqa: E402
from zpomelo.testing.process_cluster import copy_project  # noqa: E402

APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_players_app")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS   # utime + stime


def self_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Players:
    def __init__(self, rows, count):
        self.received = 0
        self.clients = []
        self.uids = []
        ports = [rows["connector-1"]["clientPort"], rows["connector-2"]["clientPort"]]
        for n in range(count):
            client = Client.connect("127.0.0.1", ports[n % 2], push_queue_size=10)
            uid = "bench-%d" % n
            assert client.request("connector.entryHandler.login", {"uid": uid})["code"] == 200
            client.on("onBench", self._got)
            self.clients.append(client)
            self.uids.append(uid)

    def _got(self, _body):
        self.received += 1

    def close(self):
        for client in self.clients:
            client.close()


def phase(controller, players, pids, mode, pushes, fanout, concurrency):
    players.received = 0
    expected = pushes * fanout
    cpu_before = {sid: cpu_seconds(pid) for sid, pid in pids.items()}
    self_before = self_cpu()
    started = time.perf_counter()
    reply = controller.request("area.benchHandler.run", {
        "mode": mode, "pushes": pushes, "fanout": fanout, "concurrency": concurrency,
        "uids": players.uids}, timeout=600)
    try:
        wait_until(lambda: players.received >= expected, 120, interval=0.01,
                   message="%d deliveries" % expected)
    except AssertionError:
        gevent.sleep(1)   # the stragglers of a phase that lost some
    wall = time.perf_counter() - started
    cpu = {sid: cpu_seconds(pid) - cpu_before[sid] for sid, pid in pids.items()}
    cpu["bench clients"] = self_cpu() - self_before
    share = {sid: round(c / wall, 2) for sid, c in cpu.items()}
    server_cpu = sum(c for sid, c in cpu.items() if sid != "bench clients")
    return {"mode": mode, "fanout": fanout, "pushes": pushes, "wall_s": round(wall, 3),
            "issued_s": round(reply["issued_s"], 3), "offline": reply["offline"],
            "delivered": players.received, "lost": expected - players.received,
            "deliveries_per_s": round(players.received / wall),
            "pushes_per_s": round(pushes / wall),
            "server_cpu_us_per_push": round(server_cpu / pushes * 1e6, 1),
            "area_cpu_us_per_push": round(cpu["area-1"] / pushes * 1e6, 1),
            "lookups_per_call": round(reply["players"]["lookups"] / max(1, reply["players"]["lookup_calls"]), 1),
            "cpu_share": share, "busiest": max(share, key=share.get)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--pushes", type=int, default=10000, help="pushes per phase at fanout 1 "
                        "(divided by the fanout for larger fanouts, so deliveries stay alike)")
    parser.add_argument("--fanouts", default="1,20")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    fanouts = [int(f) for f in args.fanouts.split(",")]
    for fanout in fanouts:
        if args.players % fanout:
            parser.error("--players must be a multiple of every fanout")

    with tempfile.TemporaryDirectory() as tmp:
        project = copy_project(APP, os.path.join(tmp, "game"), "test")
        cluster = ProcessCluster(project, "test").start()
        players = None
        try:
            wait_until(lambda: {"connector-1", "connector-2", "area-1"} <= set(cluster.servers()), 30,
                       message="every server up")
            rows = cluster.servers()
            pids = {sid: row["pid"] for sid, row in rows.items() if sid != "master" and row.get("pid")}
            players = Players(rows, args.players)
            controller = Client.connect("127.0.0.1", rows["connector-1"]["clientPort"], request_timeout=600)
            results = []
            for fanout in fanouts:
                pushes = max(1, args.pushes // fanout)
                phase(controller, players, pids, "uid", pushes // 10 or 1, fanout, args.concurrency)  # warm up
                for run in range(args.runs):
                    for mode in (("uid", "channel") if run % 2 == 0 else ("channel", "uid")):
                        result = phase(controller, players, pids, mode, pushes, fanout, args.concurrency)
                        result["run"] = run
                        results.append(result)
                        print(json.dumps(result), flush=True)
            controller.close()
        finally:
            if players is not None:
                players.close()
            cluster.stop()

    summary = []
    for fanout in fanouts:
        for mode in ("uid", "channel"):
            rows_ = [r for r in results if r["fanout"] == fanout and r["mode"] == mode]
            summary.append({
                "mode": mode, "fanout": fanout,
                "deliveries_per_s": statistics.median(r["deliveries_per_s"] for r in rows_),
                "pushes_per_s": statistics.median(r["pushes_per_s"] for r in rows_),
                "server_cpu_us_per_push": statistics.median(r["server_cpu_us_per_push"] for r in rows_),
                "area_cpu_us_per_push": statistics.median(r["area_cpu_us_per_push"] for r in rows_),
                "lost": sum(r["lost"] for r in rows_),
                "lookups_per_call": statistics.median(r["lookups_per_call"] for r in rows_),
                "busiest": sorted({r["busiest"] for r in rows_}),
                "busiest_share": statistics.median(r["cpu_share"][r["busiest"]] for r in rows_)})
    print("\nmedians of %d runs, %d players:" % (args.runs, args.players))
    for row in summary:
        print("  fanout %(fanout)3d  %(mode)-7s  %(pushes_per_s)8d pushes/s  %(deliveries_per_s)8d deliveries/s"
              "  server CPU %(server_cpu_us_per_push)7.1f us/push (area %(area_cpu_us_per_push)6.1f)"
              "  lost %(lost)d  busiest: %(busiest)s at %(busiest_share).2f of a core" % row)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "load": os.getloadavg(), "summary": summary, "runs": results},
                      f, indent=1)


if __name__ == "__main__":
    main()
