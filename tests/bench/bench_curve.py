"""The cost of CURVE on RPC: the same round trip with CURVE off and on, in one run.

    python tests/bench/bench_curve.py [--rounds 5] [--calls 3000] [--greenlets 50] [--per-greenlet 100]

Two child processes serve an echo RpcServer, one plain and one a CURVE server (keys from
rpc/security.generate in a temporary project). Rounds alternate plain/CURVE so both see the same
machine load; each round measures sequential calls (p50 latency) and concurrent sync calls from
many greenlets (calls/s). Prints the medians over the rounds and the CURVE/plain ratios. The dev
machine is shared (2 cores, other jobs): read the ratio, not the absolute numbers, and rerun when
the rounds disagree.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import gevent
from gevent.fileobject import FileObjectPosix

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from zpomelo.rpc import RpcClient, RpcServer, security  # noqa: E402

PAYLOAD = ["uid-123", "connector-1", {"route": "chat.chatHandler.send", "body": {"msg": "hello" * 4}}]


def serve(project):
    keys = security.load_keys(project) if project else None
    server = RpcServer("127.0.0.1", 0, lambda service, method, args: args, keys=keys).start()
    sys.stdout.write("%d\n" % server.port)
    sys.stdout.flush()
    FileObjectPosix(sys.stdin.fileno(), "rb", close=False).read()  # until the parent closes stdin
    server.stop(drain_timeout=0.5)


def start_child(project):
    argv = [sys.executable, os.path.abspath(__file__), "--serve"] + (["--project", project] if project else [])
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    return child, int(child.stdout.readline())


def measure(client, server_id, args):
    for _ in range(200):        # warm up (and the CURVE handshake)
        client.call(server_id, "svc", "echo", PAYLOAD, timeout=10)
    samples = []
    clock = time.perf_counter
    for _ in range(args.calls):
        start = clock()
        client.call(server_id, "svc", "echo", PAYLOAD)
        samples.append(clock() - start)
    p50 = statistics.median(samples) * 1e6

    def worker():
        for _ in range(args.per_greenlet):
            client.call(server_id, "svc", "echo", PAYLOAD)

    start = clock()
    gevent.joinall([gevent.spawn(worker) for _ in range(args.greenlets)], raise_error=True)
    rate = args.greenlets * args.per_greenlet / (clock() - start)
    return p50, rate


def bench(args):
    project = tempfile.mkdtemp(prefix="zpomelo-bench-curve-")
    os.makedirs(os.path.join(project, "config"))
    security.generate(project, curve=True)
    keys = security.load_keys(project)
    plain_child, plain_port = start_child(None)
    curve_child, curve_port = start_child(project)
    results = {"plain": [], "curve": []}
    try:
        plain = RpcClient("bench-plain")
        plain.add_peer("plain", "tcp://127.0.0.1:%d" % plain_port)
        curve = RpcClient("bench-curve", keys=keys)
        curve.add_peer("curve", "tcp://127.0.0.1:%d" % curve_port)
        for n in range(args.rounds):
            order = [("plain", plain), ("curve", curve)] if n % 2 == 0 else [("curve", curve), ("plain", plain)]
            for name, client in order:
                p50, rate = measure(client, name, args)
                results[name].append((p50, rate))
                print("round %d %-5s  p50 %6.0f us  %7.0f calls/s" % (n + 1, name, p50, rate))
        plain.close()
        curve.close()
    finally:
        for child in (plain_child, curve_child):
            child.stdin.close()
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    med = {name: (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows))
           for name, rows in results.items()}
    print("median over %d rounds: plain p50 %.0f us, %.0f calls/s; CURVE p50 %.0f us, %.0f calls/s"
          % (args.rounds, med["plain"][0], med["plain"][1], med["curve"][0], med["curve"][1]))
    print("CURVE / plain: latency x%.2f, throughput x%.2f  (load average %s)"
          % (med["curve"][0] / med["plain"][0], med["curve"][1] / med["plain"][1],
             open("/proc/loadavg").read().split()[0]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--greenlets", type=int, default=50)
    parser.add_argument("--per-greenlet", type=int, default=100)
    args = parser.parse_args()
    if args.serve:
        serve(args.project)
    else:
        bench(args)


if __name__ == "__main__":
    main()
