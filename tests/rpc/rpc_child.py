"""A tiny RpcServer process for the cross-process tests: `python rpc_child.py PORT`.

Prints the bound port on stdout, then serves until stdin closes (or it is killed).
Methods: echo(args) -> args, sleep([seconds]) -> "slept", fail([message]) -> raises ValueError.
"""
import sys

import gevent
from gevent.fileobject import FileObjectPosix

from zpomelo.rpc import RpcServer


def dispatch(service, method, args):
    if method == "sleep":
        gevent.sleep(args[0])
        return "slept"
    if method == "fail":
        raise ValueError(args[0])
    return args


def main():
    server = RpcServer("127.0.0.1", int(sys.argv[1]), dispatch).start()
    sys.stdout.write("%d\n" % server.port)
    sys.stdout.flush()
    FileObjectPosix(sys.stdin.fileno(), "rb", close=False).read()
    server.stop(drain_timeout=1.0)


if __name__ == "__main__":
    main()
