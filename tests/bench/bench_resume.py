"""Resume time for a client with 1,000 missed pushes (session resume, README "Reconnect with
session resume").

    python tests/bench/bench_resume.py [--rounds 30] [--pushes 1000] [--json out.json]

A real frontend process (tests/apps/resume). Each round: a resuming client logs in and joins the
room, loses its link (a TCP proxy cuts it; the client does not reconnect by itself), a second
client floods the room with `--pushes` pushes while it is away, then a new connection presents
the first one's token and push count. Measured per round:
  - resume wall: from the TCP connect of the resuming connection to the last missed push read
    (connect, handshake with the token, ACK, replay, decode on the client);
  - server CPU: on-CPU time of the frontend's main thread (the gevent loop) over the same span,
    and, for scale, over the flood that sent those pushes;
  - for reference, in the same run: a fresh connection + login (what a client without resume pays
    before it even asks the game for the state it lost).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))            # tests/: the resume fixtures
sys.path.insert(0, str(HERE.parent.parent))     # the repository

from resume.conftest import start_frontend, stop  # noqa: E402
from resume.proxy import TcpProxy  # noqa: E402
from zpomelo.client import Client  # noqa: E402
from zpomelo.testing import wait_until  # noqa: E402

ROOM = "connector.roomHandler."


def cpu_seconds(pid):
    """On-CPU time of the server's main thread (the gevent loop: every client byte is handled
    there) from /proc/<pid>/task/<pid>/schedstat, in nanoseconds, unlike /proc's 10 ms ticks."""
    with open("/proc/%d/task/%d/schedstat" % (pid, pid)) as f:
        return int(f.read().split()[0]) / 1e9


def one_round(port, proxy, flooder, pushes, n, pid):
    """(resume wall seconds, server CPU seconds of the resume, of the flood)."""
    away = Client.connect("127.0.0.1", proxy.port, resume=True, reconnect_for=0)
    away.request(ROOM + "login", {"uid": "bench-%d" % n})
    proxy.cut()
    wait_until(away.closed.is_set, 10, message="the cut client to notice")
    cpu0 = cpu_seconds(pid)
    flooder.request(ROOM + "flood", {"count": pushes, "pause": 0}, timeout=60)
    flood_cpu = cpu_seconds(pid) - cpu0
    seen = []
    back = Client("127.0.0.1", port, resume=True)
    back.resume.token, back.resume.pushes = away.resume.token, away.resume.pushes
    back.on("onRoom", lambda body: seen.append(body["n"]))
    cpu0 = cpu_seconds(pid)
    started = time.perf_counter()
    back.open()
    wait_until(lambda: len(seen) >= pushes, 30, interval=0.0005, message="the replay")
    wall = time.perf_counter() - started
    resume_cpu = cpu_seconds(pid) - cpu0
    assert back.handshake_sys["resume"]["resumed"] is True, back.handshake_sys["resume"]
    assert seen == list(range(pushes)), "replay lost, repeated or reordered pushes"
    back.close()
    return wall, resume_cpu, flood_cpu


def fresh_login(port, n):
    started = time.perf_counter()
    client = Client.connect("127.0.0.1", port)
    client.request(ROOM + "login", {"uid": "fresh-%d" % n})
    wall = time.perf_counter() - started
    client.close()
    return wall


def run(args):
    tmp = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    proc, port = start_frontend(tmp, window=30, buffer=max(2048, args.pushes), heartbeat=5)
    proxy = TcpProxy("127.0.0.1", port)
    flooder = Client.connect("127.0.0.1", port)
    flooder.request(ROOM + "login", {"uid": "flooder"})
    try:
        one_round(port, proxy, flooder, args.pushes, -1, proc.pid)        # warm up
        rounds = [one_round(port, proxy, flooder, args.pushes, n, proc.pid)
                  for n in range(args.rounds)]
        fresh = [fresh_login(port, n) for n in range(args.rounds)]
    finally:
        flooder.close()
        proxy.close()
        stop(proc)
    walls = sorted(r[0] for r in rounds)
    result = {
        "pushes": args.pushes, "rounds": args.rounds,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),   # other work on the box
        "resume_wall_ms": {"median": round(1000 * statistics.median(walls), 2),
                           "p90": round(1000 * walls[int(0.9 * (len(walls) - 1))], 2),
                           "max": round(1000 * walls[-1], 2)},
        "server_cpu_ms_per_resume": {"median": round(1000 * statistics.median(r[1] for r in rounds), 2),
                                     "max": round(1000 * max(r[1] for r in rounds), 2)},
        "server_cpu_ms_per_flood_of_the_same_pushes": round(
            1000 * statistics.median(r[2] for r in rounds), 2),
        "fresh_connect_and_login_wall_ms": {"median": round(1000 * statistics.median(fresh), 2)},
    }
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--pushes", type=int, default=1000)
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
