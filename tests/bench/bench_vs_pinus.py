"""zpomelo's examples/bench against the pinus reference app, the same load in the same run.

    PINUS_APP=/path/to/pinus-app python tests/bench/bench_vs_pinus.py \
        [--runs 5] [--duration 5] [--scenarios echo50,echo50x4,echo50at10k,push200,connect2000,echo200,echo200x4] \
        [--targets zpomelo,pinus] [--transport ws] [--workers 1] \
        [--out tests/bench/results/vs_pinus.json] [--markdown tests/bench/results/vs_pinus.md]

PINUS_APP is a copy of the pinus reference app with `npm install` done in it. Rounds as in
sidebyside.py (targets one at a time, order alternating); the table gives per scenario the medians
of each target's numbers and the medians of the per-round zpomelo/pinus ratios. With the
defaults (5 rounds of 7 scenarios of 5 s on each target) it takes about 14 minutes.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import sidebyside  # noqa: E402
from bench_targets import ROOT, PinusApp, ZpomeloApp  # noqa: E402

# In this order on purpose: after 200 clients closed with 4 requests in flight each, pinus 1.7.4
# delivered no more channel pushes in that process (0 in the next 5 s window, no error logged),
# so the push run comes before the 200-client echo runs (it is unaffected by 50 clients).
SCENARIOS = {
    "echo50": dict(mode="echo", clients=50, inflight=1),
    "echo50x4": dict(mode="echo", clients=50, inflight=4),
    "echo50at10k": dict(mode="echo", clients=50, inflight=1, rate=10000),
    "push200": dict(mode="broadcast", clients=200, senders=50),
    "connect2000": dict(mode="connect", clients=2000, inflight=50),
    "echo200": dict(mode="echo", clients=200, inflight=1),
    "echo200x4": dict(mode="echo", clients=200, inflight=4),
}
DESCRIPTIONS = {
    "echo50": "echo, 50 clients, 1 in flight", "echo50x4": "echo, 50 clients, 4 in flight",
    "echo50at10k": "echo, 50 clients paced at 10,000 requests/s in all (`--rate`): both targets "
                   "get the same load, so their CPU per request compares like for like",
    "echo200": "echo, 200 clients, 1 in flight", "echo200x4": "echo, 200 clients, 4 in flight",
    "push200": "push fan-out: 50 senders notify a 200-member channel, each sending its next "
               "message when its own comes back (op = delivered push)",
    "connect2000": "connect + handshake, 2,000 clients, 50 at once (op = connection)",
}
TARGETS = {
    "zpomelo": lambda: ZpomeloApp(),
    "zpomelo-2fe": lambda: ZpomeloApp(env="twofrontends", server_ids=(
        "chat-server-1", "connector-server-1", "connector-server-2")),
    "pinus": lambda: PinusApp(),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sidebyside.add_arguments(parser)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--targets", default="zpomelo,pinus")
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "bench", "results", "vs_pinus.json"))
    args = parser.parse_args()
    scenarios = {n: SCENARIOS[n] for n in sidebyside.pick(parser, args.scenarios, SCENARIOS, "scenario")}
    targets = {n: TARGETS[n] for n in sidebyside.pick(parser, args.targets, TARGETS, "target")}
    began = time.time()
    results = sidebyside.run_rounds(targets, scenarios, args)
    print(sidebyside.report(results, args, "pinus", DESCRIPTIONS, began, args.out))


if __name__ == "__main__":
    main()
