"""Small ZeroMQ socket helpers shared by every socket owner (RPC server and peers, bus, master).

- ``bind(sock, host, port, what)``: bind ``tcp://host:port`` (port 0: any free port) and return the
  port actually bound, read back from the socket; a failure closes the socket (it is of no use
  unbound) and raises OSError naming ``what`` and the address.
- ``RECONNECT_IVL_MS`` / ``RECONNECT_IVL_MAX_MS`` and ``set_reconnect(sock)``: one reconnect
  schedule (100 ms doubling to 1 s) for every connecting socket, so a restarted server is found
  by all its peers at the same pace.
"""
import zmq

RECONNECT_IVL_MS = 100
RECONNECT_IVL_MAX_MS = 1000


def bound_port(sock):
    """The TCP port a bound socket listens on (ZeroMQ reports it as its last endpoint)."""
    return int(sock.getsockopt(zmq.LAST_ENDPOINT).decode().rsplit(":", 1)[1])


def bind(sock, host, port, what="socket"):
    """Bind ``sock`` to tcp://host:port (0 = any free port); returns the bound port."""
    try:
        sock.bind("tcp://%s:%s" % (host, port if port else "*"))
    except zmq.ZMQError as exc:
        sock.close()
        raise OSError("%s cannot bind tcp://%s:%s: %s" % (what, host, port, exc)) from exc
    return bound_port(sock)


def set_reconnect(sock):
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
