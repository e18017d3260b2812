"""Server CPU per forwarded echo request (connector and chat backend apart), for one or more code trees.

    python tests/bench/bench_forward_cpu.py [--roots A,B] [--rounds 3] [--duration 6] [--clients 50]
        [--transport ws] [--inflight 1] [--mode echo|chat] [--senders 10] [--out FILE]

Starts examples/bench (connector-server-1 + chat-server-1) from a copy of the app whose ports are
free loopback ports, runs `zpomelo bench --mode echo` against it and reads both servers' CPU
time from /proc over the measurement window: CPU µs per request = CPU seconds / requests. With
several ``--roots`` (source trees, e.g. a worktree of main and this branch) the rounds alternate
between them, so a busy shared machine slows every tree alike; the summary gives medians.
The load tool runs from the current tree for all roots (only the servers change).
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from zpomelo.bench import BenchOptions, run_bench  # noqa: E402
from zpomelo.testing import wait_until  # noqa: E402

ROUTE = "chat.chatHandler.echo"


def free_ports(count):
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def app_copy(src_root):
    """examples/bench of ``src_root`` in a temp dir, env "production" rewritten to free ports."""
    tmp = tempfile.mkdtemp(prefix="zpomelo-fwd-")
    app_dir = os.path.join(tmp, "app")
    shutil.copytree(os.path.join(src_root, "examples", "bench"), app_dir)
    rpc_c, rpc_b, client = free_ports(3)
    servers = {"production": {
        "connector": [{"id": "connector-server-1", "host": "127.0.0.1", "port": rpc_c,
                       "clientHost": "127.0.0.1", "clientPort": client, "frontend": True}],
        "chat": [{"id": "chat-server-1", "host": "127.0.0.1", "port": rpc_b}]}}
    with open(os.path.join(app_dir, "config", "servers.json"), "w") as f:
        json.dump(servers, f)
    return tmp, app_dir, client


class Cluster:
    """chat-server-1 then connector-server-1 as processes running the code of ``root``."""

    def __init__(self, root):
        self.root = root
        self.procs = []

    def __enter__(self):
        self.tmp, app_dir, self.port = app_copy(self.root)
        env = dict(os.environ, ZPOMELO_LOG_LEVEL="WARNING", PYTHONPATH=self.root)
        env.pop("BENCH_CLIENT_PORT", None)
        for server_id in ("chat-server-1", "connector-server-1"):
            ready = os.path.join(self.tmp, server_id + ".ready")
            proc = subprocess.Popen([sys.executable, "-m", "zpomelo.server", "--dir", app_dir,
                                     "--env", "production", "--id", server_id, "--ready-file", ready,
                                     "--log-dir", self.tmp], env=env, cwd=self.tmp)
            self.procs.append(proc)
            wait_until(lambda: os.path.exists(ready) or proc.poll() is not None, 30.0,
                       message="%s to start" % server_id)
            if proc.poll() is not None:
                raise RuntimeError("%s exited; logs in %s" % (server_id, self.tmp))
        return self

    def __exit__(self, *exc):
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(self.tmp, ignore_errors=True)


def one_round(root, args):
    with Cluster(root) as cluster:
        backend, connector = (p.pid for p in cluster.procs)
        options = dict(mode=args.mode, port=cluster.port, transport=args.transport,
                       clients=args.clients, inflight=args.inflight, duration=args.duration,
                       warmup=args.warmup, pids=(connector, backend))
        if args.mode == "echo":
            options["route"] = ROUTE
        else:
            options["senders"] = args.senders
        result = run_bench(BenchOptions(**options))
    # per forwarded request (echo) or per push delivered to a client (chat)
    requests = (result["requests"] if args.mode == "echo" else result["pushes"]) or 1
    server = result["server"]
    return {"requests_per_s": result["requests_per_s"], "errors": result["errors"],
            "connector_us": round(1e6 * server[str(connector)]["cpu_s"] / requests, 1),
            "backend_us": round(1e6 * server[str(backend)]["cpu_s"] / requests, 1),
            "connector_cpu_percent": server[str(connector)]["cpu_percent"],
            "backend_cpu_percent": server[str(backend)]["cpu_percent"],
            "loadgen_cpu_percent": result["loadgen_cpu_percent"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--roots", default=ROOT, help="comma-separated source trees to compare")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--inflight", type=int, default=1)
    parser.add_argument("--transport", default="ws")
    parser.add_argument("--mode", default="echo", choices=("echo", "chat"),
                        help="chat: every client joins one room, --senders of them send; "
                             "CPU is then per push delivered")
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    roots = [os.path.abspath(r) for r in args.roots.split(",")]
    runs = {root: [] for root in roots}
    for round_no in range(args.rounds):
        for root in roots:
            r = one_round(root, args)
            runs[root].append(r)
            print("round %d %-30s %8.0f req/s connector %6.1f us (%5.1f%%) backend %6.1f us (%5.1f%%) "
                  "load %5.1f%% errors %d" % (round_no + 1, root[-30:], r["requests_per_s"], r["connector_us"],
                                              r["connector_cpu_percent"], r["backend_us"],
                                              r["backend_cpu_percent"], r["loadgen_cpu_percent"], r["errors"]),
                  file=sys.stderr, flush=True)
    summary = {}
    for root, results in runs.items():
        summary[root] = {key: statistics.median(r[key] for r in results)
                         for key in ("requests_per_s", "connector_us", "backend_us")}
        summary[root]["runs"] = results
    text = json.dumps({"mode": args.mode, "clients": args.clients, "inflight": args.inflight, "transport": args.transport,
                       "duration_s": args.duration, "summary": summary}, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    for root in roots:
        s = summary[root]
        print("%-40s %8.0f req/s  connector %6.1f us  backend %6.1f us" % (
            root[-40:], s["requests_per_s"], s["connector_us"], s["backend_us"]))


if __name__ == "__main__":
    main()
