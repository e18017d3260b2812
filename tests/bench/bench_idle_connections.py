"""RSS per idle connection and connect + handshake CPU per connection on one connector.

    python tests/bench/bench_idle_connections.py [--roots A,B] [--rounds 2] [--connections 10000]
        [--transport tcp|ws] [--hold 8] [--beat 0]

Starts examples/bench (as bench_forward_cpu.py does: free ports, one tree per round, rounds
alternating between ``--roots``), opens ``--connections`` clients from this process (plain
sockets: handshake, handshake reply, ACK; 200 at a time), then reads the connector's RSS (the
delta over the idle server, divided by the connections) and its CPU over the connect phase
(per connection). The connections are then held idle for ``--hold`` seconds and RSS is read
again (it must stay flat). With ``--beat S`` every client sends a heartbeat each S seconds of
the hold and reads the server's answer, as an idle Pomelo client does (the bench app's
heartbeat is 10 s and drops a client silent for 20 s, so a hold over ~15 s needs it); RSS is
then sampled at each beat and the largest value is reported too. The file descriptor limit is
raised with resource.setrlimit.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import gevent
from gevent import socket
from gevent.pool import Pool

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_forward_cpu  # noqa: E402

from zpomelo.bench.stats import read_process  # noqa: E402
from zpomelo.protocol import handshake, package, websocket  # noqa: E402

HANDSHAKE = handshake.encode_client_request({"type": "bench", "version": "0.1"}, {})
ACK = package.encode(package.HANDSHAKE_ACK)
BEAT = package.encode(package.HEARTBEAT)


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


def read_until(sock, predicate, what):
    data = b""
    while not predicate(data):
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("connection closed during %s" % what)
        data += chunk
    return data


def open_one(port, transport, out):
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    if transport == "ws":
        request, _key = websocket.client_request("127.0.0.1", "/")
        sock.sendall(request)
        read_until(sock, lambda d: b"\r\n\r\n" in d, "upgrade")
        sock.sendall(websocket.encode_frame(HANDSHAKE, mask=True))
        read_until(sock, lambda d: len(d) > 6, "handshake")
        sock.sendall(websocket.encode_frame(ACK, mask=True))
    else:
        sock.sendall(HANDSHAKE)
        read_until(sock, lambda d: len(d) >= 4 and len(d) >= 4 + int.from_bytes(d[1:4], "big"), "handshake")
        sock.sendall(ACK)
    out.append(sock)


def beat_all(socks, transport):
    """One heartbeat from every client, then every server answer read (each is 4 bytes, or a
    6-byte frame on WebSocket); a client the server dropped raises."""
    beat = websocket.encode_frame(BEAT, mask=True) if transport == "ws" else BEAT
    size = len(beat) - (4 if transport == "ws" else 0)    # the server's frames are unmasked
    for sock in socks:
        sock.sendall(beat)
    for sock in socks:
        read_until(sock, lambda d: len(d) >= size, "heartbeat")


def one_round(root, args):
    with bench_forward_cpu.Cluster(root) as cluster:
        connector = cluster.procs[1].pid
        socks = []
        time.sleep(1.0)
        idle = read_process(connector)
        pool = Pool(200)
        start = time.perf_counter()
        for _ in range(args.connections):
            pool.spawn(open_one, cluster.port, args.transport, socks)
        pool.join()
        # the server has read every ACK once our last heartbeat-free moment settles
        gevent.sleep(1.0)
        connected = read_process(connector)
        elapsed = time.perf_counter() - start
        peak = connected["rss_kb"]
        if args.beat > 0:
            ends = time.monotonic() + args.hold
            while time.monotonic() < ends:
                gevent.sleep(min(args.beat, max(0.0, ends - time.monotonic())))
                beat_all(socks, args.transport)
                peak = max(peak, read_process(connector)["rss_kb"])
        else:
            gevent.sleep(args.hold)
        held = read_process(connector)
        peak = max(peak, held["rss_kb"])
        n = len(socks)
        for sock in socks:
            sock.close()
    return {"connections": n, "connect_s": round(elapsed, 2),
            "rss_idle_kb": idle["rss_kb"], "rss_connected_kb": connected["rss_kb"], "rss_held_kb": held["rss_kb"],
            "rss_kb_per_connection": round((connected["rss_kb"] - idle["rss_kb"]) / max(1, n), 2),
            "rss_growth_while_held_kb": held["rss_kb"] - connected["rss_kb"],
            "rss_peak_growth_while_held_kb": peak - connected["rss_kb"],
            "cpu_us_per_connection": round(1e6 * (connected["cpu_s"] - idle["cpu_s"]) / max(1, n), 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--roots", default=bench_forward_cpu.ROOT)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--transport", default="tcp")
    parser.add_argument("--hold", type=float, default=8.0)
    parser.add_argument("--beat", type=float, default=0.0,
                        help="seconds between heartbeats from every client during the hold (0: none)")
    args = parser.parse_args()
    raise_fd_limit(args.connections + 1000)
    roots = [os.path.abspath(r) for r in args.roots.split(",")]
    runs = {root: [] for root in roots}
    for round_no in range(args.rounds):
        for root in roots:
            r = one_round(root, args)
            runs[root].append(r)
            print("round %d %-30s %s" % (round_no + 1, root[-30:], json.dumps(r)), file=sys.stderr, flush=True)
    for root, results in runs.items():
        print("%-40s %d connections: %.2f KB RSS each, %.1f us CPU each, %+d KB while held "
              "(peak %+d KB)" % (
                  root[-40:], results[0]["connections"],
                  statistics.median(r["rss_kb_per_connection"] for r in results),
                  statistics.median(r["cpu_us_per_connection"] for r in results),
                  statistics.median(r["rss_growth_while_held_kb"] for r in results),
                  statistics.median(r["rss_peak_growth_while_held_kb"] for r in results)))


if __name__ == "__main__":
    main()
