"""The connector's write path on its own: `Connection.send` and corked answers over a real socket.

    .venv/bin/python tests/bench/bench_writer.py [--runs 7] [--n 200000]

One process, one loopback TCP pair per case; a drain greenlet reads the far end and the clock
stops when every byte arrived. Cases:
  idle      send() one small package at a time, yielding every 32 sends (the direct-write path)
  burst     N sends without yielding (the queue and the writer greenlet's batching)
  corked    handle_bytes() of 50 pipelined requests, each answered with send() (cork, one write)
  ws-*      the same over a WebSocket connection (framing per write)
Prints CPU ns per package (user + system time of this process, both ends of the socket
included: steadier than wall time on a shared machine), the median over the runs and the
spread (max/min of the runs), and the wall-time median. To compare two trees, run this file
with each on PYTHONPATH, alternating, on the same machine, and compare ratios.
"""
import argparse
import json
import os
import statistics
import sys
import time

import gevent
from gevent import socket
from gevent.event import Event

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from zpomelo.connector import WORKING, ConnectorConfig  # noqa: E402
from zpomelo.connector.tcp import TcpConnection  # noqa: E402
from zpomelo.connector.ws import WsConnection  # noqa: E402
from zpomelo.protocol import message, package  # noqa: E402
from zpomelo.protocol import websocket as wsproto  # noqa: E402
from zpomelo.protocol.codec import ServerCodec  # noqa: E402

ANSWER = package.encode(package.DATA, message.encode_response(7, b'{"code":200,"echo":"hello"}'))
REQUEST = package.encode(package.DATA, message.encode_request(300, "connector.entryHandler.echo",
                                                              b'{"msg":"hello"}'))


class _Frontend:
    def __init__(self, config):
        self.connector_config = config

    def on_connect(self, conn):
        return True

    def on_request(self, conn, msg_id, route, body):
        conn.send(ANSWER)

    def on_close(self, conn, reason):
        pass


class _Connector:
    def __init__(self):
        self.config = ConnectorConfig(codec=ServerCodec(), write_queue_limit=1 << 30)
        self.frontend = _Frontend(self.config)

    def _forget(self, conn):
        pass


def _pair():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    return server, client


def _run(case, n):
    server, client = _pair()
    cls = WsConnection if case.startswith("ws-") else TcpConnection
    conn = cls(_Connector(), server, ("127.0.0.1", 0), 1)
    conn.state = WORKING
    kind = case.split("-")[-1]
    received = [0]
    done = Event()
    # Count package bytes, not frame bytes: over WebSocket the framing depends on the batching.
    frames = wsproto.FrameDecoder(1 << 30) if cls is WsConnection else None

    def drain():
        while True:
            data = client.recv(1 << 20)
            if not data:
                return
            if frames is not None:
                received[0] += sum(len(payload) for _, payload in frames.feed(data))
            else:
                received[0] += len(data)
            if received[0] >= need[0]:
                done.set()

    need = [n * len(ANSWER)]
    reader = gevent.spawn(drain)
    send = conn.send
    start = time.perf_counter()
    cpu_start = time.process_time()
    if kind == "idle":
        for i in range(n):
            send(ANSWER)
            if i & 31 == 31:
                gevent.sleep(0)
    elif kind == "burst":
        for _ in range(n):
            send(ANSWER)
    else:   # corked
        batch = REQUEST * 50
        for i in range(n // 50):
            conn.handle_bytes(batch)
            if i & 3 == 3:
                gevent.sleep(0)
    if not done.wait(60):
        raise RuntimeError("%s: only %d of %d bytes arrived" % (case, received[0], need[0]))
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    conn.close("bench done")
    reader.kill()
    client.close()
    return cpu / n * 1e9, elapsed / n * 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--n", type=int, default=200000)
    parser.add_argument("--cases", default="idle,burst,corked,ws-idle,ws-burst,ws-corked")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = {}
    for _ in range(args.runs):
        for case in args.cases.split(","):
            results.setdefault(case, []).append(_run(case, args.n))
    summary = {}
    for case, runs in results.items():
        cpu = [c for c, _ in runs]
        summary[case] = {"cpu_ns": round(statistics.median(cpu), 1),
                         "spread": round(max(cpu) / min(cpu), 3),
                         "wall_ns": round(statistics.median(w for _, w in runs), 1)}
    if args.json:
        print(json.dumps(summary))
    else:
        for case, row in summary.items():
            print("%-10s %8.1f CPU ns/package (max/min over runs %.2f), wall %8.1f ns"
                  % (case, row["cpu_ns"], row["spread"], row["wall_ns"]))


if __name__ == "__main__":
    main()
