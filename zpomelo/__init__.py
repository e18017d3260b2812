"""zpomelo: a distributed game-server framework (Pomelo's model) on gevent, ZeroMQ and msgpack."""
from zpomelo.errors import (  # noqa: F401
    ConfigError,
    HandlerError,
    ProtocolError,
    RpcError,
    RpcTimeout,
    ServerGone,
    ZpomeloError,
)

__version__ = "0.1.0"
