"""A stand-in server process for master tests: the real MasterAgent, no game code.

Takes the arguments of `python -m zpomelo.server`. It binds one TCP listener on its clientPort
when it is a frontend (so tests can see it serving), registers, logs every membership event, answers
"info" with its membership, and exits on "stop". The servers.json key "fake" changes its
behaviour: "fail-start" exits with code 3 before registering; "slow-stop" ignores "stop".
"""
import argparse
import json
import logging
import os
import sys

import gevent
import gevent.event
from gevent.server import StreamServer

from zpomelo.config import ServerRecord, load_servers
from zpomelo.master import procinfo
from zpomelo.master.agent import MasterAgent
from zpomelo.rpc.security import load_keys


def main():
    parser = argparse.ArgumentParser()
    for name in ("--dir", "--env", "--id", "--master", "--log-dir", "--record"):
        parser.add_argument(name)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s")
    log = logging.getLogger("fake." + args.id)
    if args.record:
        record = ServerRecord.from_dict(json.loads(args.record))
    else:
        record = next(r for r in load_servers(args.dir, args.env) if r.id == args.id)
    mode = record.extra.get("fake")
    if mode == "fail-start":
        log.error("failing on purpose before registering")
        sys.exit(3)
    d = record.to_dict()
    listener = None
    if record.frontend:
        # answers one line per connection: the server id (shows the server is serving)
        def answer(sock, _addr):
            sock.sendall(("%s\n" % record.id).encode())
            sock.close()
        listener = StreamServer((record.client_host or record.host, record.client_port or 0),
                                answer)
        listener.start()
        d["clientPort"] = listener.server_port
    d["pid"] = os.getpid()
    d["busPort"] = 0
    done = gevent.event.Event()
    state = {"after_start_all": 0}

    def on_command(name, cmd_args):
        log.info("command %s %r", name, cmd_args)
        if name == "info":
            return {**procinfo.self_report(), "connections": 0, "members": sorted(agent.members),
                    "after_start_all": state["after_start_all"]}
        if name == "stop" and mode != "slow-stop":
            gevent.spawn_later(0.05, done.set)
        if name == "after_start_all":
            state["after_start_all"] += 1
        return None

    agent = MasterAgent(args.master, d,
                        on_add=lambda r: log.info("member add %s", r["id"]),
                        on_remove=lambda sid: log.info("member remove %s", sid),
                        on_command=on_command, keys=load_keys(args.dir))
    members = agent.start(timeout=10)
    log.info("registered; members %s", sorted(m["id"] for m in members))
    done.wait()
    agent.stop()
    if listener is not None:
        listener.stop()
    log.info("stopped")


if __name__ == "__main__":
    main()
