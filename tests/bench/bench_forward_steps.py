"""CPU per step of a forwarded echo request, each step timed alone in one process (no sockets).

    python tests/bench/bench_forward_steps.py [--n 20000] [--rounds 5] [--root TREE]

The steps are the functions the connector and the backend run for one `chat.chatHandler.echo`
request of examples/bench (WebSocket, route dictionary, JSON body); what they do not show (system
calls, ZeroMQ's I/O thread, greenlet switches, the event loop) is the difference to the end-to-end
numbers of bench_forward_cpu.py. Medians of ``--rounds`` runs of ``--n`` iterations, in µs.
``--root`` times the zpomelo of another source tree (e.g. a worktree of an older commit).
"""
import argparse
import os
import statistics
import sys
import time

_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if "--root" in sys.argv:
    _root = os.path.abspath(sys.argv[sys.argv.index("--root") + 1])
sys.path.insert(0, _root)

import gevent  # noqa: E402

from zpomelo import greenpool  # noqa: E402
from zpomelo.backend_session import BackendSession  # noqa: E402
from zpomelo.handler import FilterChain, HandlerService  # noqa: E402
from zpomelo.protocol import message, package, websocket  # noqa: E402
from zpomelo.protocol.codec import ServerCodec, decode_json_body, encode_json  # noqa: E402
from zpomelo.protocol.dictionary import RouteDictionary  # noqa: E402
from zpomelo.router import parse_route  # noqa: E402
from zpomelo.rpc import envelope  # noqa: E402
from zpomelo.sysapi import FORWARD, SYS  # noqa: E402

ROUTE = "chat.chatHandler.echo"
BODY = {"msg": "hello zpomelo, 32 bytes of text", "n": 12345}


def echo(app, msg, session):
    return msg


def steps():
    """[(side, name, fn)]: each fn runs one step on prepared input."""
    import json
    dictionary = RouteDictionary([ROUTE, "chat.chatHandler.send", "connector.entryHandler.entry"])
    codec = ServerCodec(dictionary=dictionary)
    raw_body = json.dumps(BODY, separators=(",", ":")).encode()
    code = dictionary.code_of(ROUTE)
    msg_bytes = message.encode(message.REQUEST, 7, code, raw_body)
    pkg = package.encode(package.DATA, msg_bytes)
    ws_frame = websocket.encode_frame(pkg, mask=True)
    frames = websocket.FrameDecoder(65536, require_mask=True)
    packages = package.PackageDecoder(65536)
    packer = envelope.EnvelopePacker()
    settings = {"rid": "bench"}
    snapshot = [1234, "connector-server-1", "u1", settings]
    forward_args = (ROUTE, dict(BODY), snapshot)
    frame_req = envelope.join_frame([packer.request(99, SYS, FORWARD, forward_args)])
    handler = HandlerService(None, "chat", {"chatHandler": {"echo": echo}}, FilterChain())
    frame_rep = envelope.join_frame([packer.reply(99, dict(BODY))])
    answer = codec.encode_response(7, ROUTE, BODY)
    pool = greenpool.GreenPool(100)

    def pool_job():
        pool.spawn(_noop)
        gevent.sleep(0)

    table = [
        ("connector", "WS unframe (FrameDecoder.feed)", lambda: frames.feed(ws_frame)),
        ("connector", "Pomelo package (PackageDecoder.feed)", lambda: packages.feed(pkg)),
        ("connector", "Pomelo decode (message + dictionary + JSON body)", lambda: codec.decode(msg_bytes)),
        ("connector", "Pomelo decode, head only (message + dictionary)", lambda: message.decode_parts(msg_bytes)),
        ("connector", "route (parse_route)", lambda: parse_route(ROUTE)),
        ("connector", "envelope (snapshot + pack request)",
         lambda: packer.request(99, SYS, FORWARD, [ROUTE, BODY, [1234, "connector-server-1", "u1", settings]])),
        ("connector", "envelope, raw body (pack request)",
         lambda: packer.request(99, SYS, FORWARD, [ROUTE, raw_body, [1234, "connector-server-1", "u1", settings]])),
        ("connector", "reply envelope (unpack_replies)", lambda: envelope.unpack_replies(frame_rep)),
        ("connector", "Pomelo encode (JSON response)", lambda: codec.encode_response(7, ROUTE, BODY)),
        ("connector", "Pomelo encode, raw JSON", lambda: codec.encode_response_raw(7, raw_body)),
        ("connector", "WS frame", lambda: websocket.encode_frame(answer)),
        ("backend", "envelope (unpack_requests)", lambda: envelope.unpack_requests(frame_req)),
        ("backend", "session snapshot (BackendSession.from_snapshot)",
         lambda: BackendSession.from_snapshot(None, snapshot)),
        ("backend", "filters + handler (HandlerService.handle, no filters)",
         lambda: handler.handle(ROUTE, BODY, None)),
        ("backend", "reply envelope (pack reply)", lambda: packer.reply(99, BODY)),
        ("backend", "pool greenlet (GreenPool.spawn + switch)", pool_job),
        ("backend", "JSON encode of the answer (encode_json)", lambda: encode_json(BODY)),
        ("backend", "JSON decode of the body (decode_json_body)",
         lambda: decode_json_body(raw_body, 7, ROUTE)),
    ]
    if hasattr(codec, "decode_lazy"):    # trees with the pass-through (RawBody)
        table.insert(3, ("connector", "Pomelo decode, body passed through (decode_lazy)",
                         lambda: codec.decode_lazy(msg_bytes)))
    return table


def _noop():
    pass


def timed(fn, n):
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return 1e6 * (time.perf_counter() - start) / n


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--root", default=None, help="source tree whose zpomelo is timed")
    args = parser.parse_args()
    table = steps()
    results = {name: [] for _side, name, _fn in table}
    for _ in range(args.rounds):
        for _side, name, fn in table:
            results[name].append(timed(fn, args.n))
    print("| side | step | µs |")
    print("|---|---|---|")
    for side, name, _fn in table:
        print("| %s | %s | %.2f |" % (side, name, statistics.median(results[name])))


if __name__ == "__main__":
    main()
