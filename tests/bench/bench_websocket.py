"""The connector's WebSocket path: ours (zpomelo.protocol.websocket) against gevent-websocket.

    python tests/bench/bench_websocket.py [--runs 5] [--duration 5] \
        [--scenarios echo50,echo200x4,push200,connect2000] [--markdown FILE] \
        [--out tests/bench/results/websocket.json]

Both targets are the bench app (connector-server-1 + chat-server-1, as examples/bench) and differ
only in how the connector reads WebSocket frames and answers the upgrade: "ours" is the
connector as shipped; "gevent-websocket" is the prototype in ws_gevent_proto.py (transport
sniffed with MSG_PEEK, the untouched socket handed to pywsgi + WebSocketHandler). It needs
gevent-websocket installed (`pip install gevent-websocket`). Rounds as in sidebyside.py; the
ratios are gevent-websocket/ours.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import sidebyside  # noqa: E402
from bench_targets import BENCH_APP, ROOT, ZpomeloApp  # noqa: E402

SCENARIOS = {
    "echo50": dict(mode="echo", clients=50, inflight=1),
    "echo200x4": dict(mode="echo", clients=200, inflight=4),
    "push200": dict(mode="broadcast", clients=200, senders=50),
    "connect2000": dict(mode="connect", clients=2000, inflight=50),
}
DESCRIPTIONS = {
    "echo50": "echo, 50 clients, 1 in flight", "echo200x4": "echo, 200 clients, 4 in flight",
    "push200": "push fan-out: 50 senders notify a 200-member channel, each sending its next "
               "message when its own comes back (op = delivered push)",
    "connect2000": "connect + WebSocket upgrade + handshake, 2,000 clients, 50 at once (op = connection)",
}
OVERLAY = {"base_app.py": os.path.join(BENCH_APP, "app.py"), "app.py": os.path.join(HERE, "ws_app.py")}


def target(library):
    return lambda: ZpomeloApp(overlay=OVERLAY, extra_env={"ZPOMELO_BENCH_WS": library,
                                                          "ZPOMELO_BENCH_TESTS": HERE})


TARGETS = {"ours": target("ours"), "gevent-websocket": target("gevent-websocket")}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sidebyside.add_arguments(parser)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "bench", "results", "websocket.json"))
    args = parser.parse_args()
    if args.transport != "ws":
        parser.error("this benchmark compares WebSocket paths: --transport ws")
    scenarios = {n: SCENARIOS[n] for n in sidebyside.pick(parser, args.scenarios, SCENARIOS, "scenario")}
    began = time.time()
    results = sidebyside.run_rounds(TARGETS, scenarios, args)
    print(sidebyside.report(results, args, "ours", DESCRIPTIONS, began, args.out))


if __name__ == "__main__":
    main()
