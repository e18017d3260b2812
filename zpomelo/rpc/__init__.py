"""ZeroMQ RPC transport: msgpack envelopes over DEALER -> ROUTER. Knows nothing about the app."""
from zpomelo.rpc.client import DEFAULT_TIMEOUT, RpcClient  # noqa: F401
from zpomelo.rpc.server import RpcServer  # noqa: F401
