"""RPC round trip between two processes: sequential latency and concurrent throughput.

    /work/venv/bin/python tests/bench/bench_rpc.py [--calls 5000] [--greenlets 100] [--per-greenlet 200]

Starts a child process running an RpcServer whose dispatch echoes its args, connects an RpcClient
and reports p50/p99 of sequential calls (microseconds) and calls/s with many greenlets calling at
once (sync `call`) and with `call_async` from one loop (the frontend forward path).
Target: sequential p50 under 500 us.
"""
import argparse
import os
import subprocess
import sys
import time

import gevent
from gevent.event import Event
from gevent.fileobject import FileObjectPosix

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from zpomelo.rpc import RpcClient, RpcServer  # noqa: E402


def serve():
    server = RpcServer("127.0.0.1", 0, lambda service, method, args: args).start()
    sys.stdout.write("%d\n" % server.port)
    sys.stdout.flush()
    FileObjectPosix(sys.stdin.fileno(), "rb", close=False).read()  # until the parent closes stdin or dies
    server.stop(drain_timeout=0.5)


def percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def bench(args):
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        port = int(child.stdout.readline())
        client = RpcClient("bench")
        client.add_peer("echo", "tcp://127.0.0.1:%d" % port)
        payload = ["uid-123", "connector-1", {"route": "chat.chatHandler.send", "body": {"msg": "hello" * 4}}]
        for _ in range(200):  # warm up and wait for the connection
            client.call("echo", "svc", "echo", payload, timeout=5)

        samples = []
        clock = time.perf_counter
        for _ in range(args.calls):
            start = clock()
            client.call("echo", "svc", "echo", payload)
            samples.append(clock() - start)
        samples.sort()
        print("sequential call: %d calls  p50 %.0f us  p99 %.0f us  mean %.0f us" % (
            len(samples), percentile(samples, 0.5) * 1e6, percentile(samples, 0.99) * 1e6,
            sum(samples) / len(samples) * 1e6))

        def worker():
            for _ in range(args.per_greenlet):
                client.call("echo", "svc", "echo", payload)

        start = clock()
        gevent.joinall([gevent.spawn(worker) for _ in range(args.greenlets)], raise_error=True)
        total = args.greenlets * args.per_greenlet
        print("concurrent call: %d greenlets x %d  %.0f calls/s" % (
            args.greenlets, args.per_greenlet, total / (clock() - start)))

        total = args.greenlets * args.per_greenlet
        window = args.greenlets
        done = Event()
        state = {"sent": 0, "settled": 0, "errors": 0}

        def on_reply(error, _result):
            state["settled"] += 1
            if error is not None:
                state["errors"] += 1
            if state["sent"] < total:
                state["sent"] += 1
                client.call_async("echo", "svc", "echo", payload, None, on_reply)
            elif state["settled"] == total:
                done.set()

        start = clock()
        for _ in range(window):
            state["sent"] += 1
            client.call_async("echo", "svc", "echo", payload, None, on_reply)
        if not done.wait(timeout=60):
            raise SystemExit("call_async run did not finish: %r" % (state,))
        print("call_async: %d in flight  %.0f calls/s  errors %d" % (
            window, total / (clock() - start), state["errors"]))
        client.close()
    finally:
        child.stdin.close()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--greenlets", type=int, default=100)
    parser.add_argument("--per-greenlet", type=int, default=200)
    args = parser.parse_args()
    if args.serve:
        serve()
    else:
        bench(args)


if __name__ == "__main__":
    main()
