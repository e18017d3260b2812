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


def create_app(base_dir=".", env=None, server=None, master=None):
    """An Application for one server of the project in ``base_dir`` (see zpomelo.application)."""
    from zpomelo.application import create_app as _create_app
    return _create_app(base_dir, env, server, master)
