"""app.py of the WebSocket-library benchmark: the bench app (its app.py copied next to this file
as base_app.py) with the connector's WebSocket path chosen by ZPOMELO_BENCH_WS:
"ours" (zpomelo.protocol.websocket, the default) or "gevent-websocket" (ws_gevent_proto.py,
found through ZPOMELO_BENCH_TESTS, the tests/bench directory)."""
import importlib.util
import os
import sys

_spec = importlib.util.spec_from_file_location(
    "zpomelo_bench_base_app", os.path.join(os.path.dirname(os.path.abspath(__file__)), "base_app.py"))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)

if os.environ.get("ZPOMELO_BENCH_WS") == "gevent-websocket":
    sys.path.insert(0, os.environ["ZPOMELO_BENCH_TESTS"])
    import ws_gevent_proto
    ws_gevent_proto.install()


def configure(app):
    _base.configure(app)
