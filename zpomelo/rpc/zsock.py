"""Small ZeroMQ socket helpers shared by every socket owner (RPC server and peers, bus, master).

- ``bind(sock, host, port, what)``: bind ``tcp://host:port`` (port 0: any free port) and return the
  port actually bound, read back from the socket; a failure closes the socket (it is of no use
  unbound) and raises OSError naming ``what`` and the address.
- ``RECONNECT_IVL_MS`` / ``RECONNECT_IVL_MAX_MS`` and ``set_reconnect(sock)``: one reconnect
  schedule (100 ms doubling to 1 s) for every connecting socket, so a restarted server is found
  by all its peers at the same pace.
- ``ephemeral_port_clash(port)``: a configured port inside net.ipv4.ip_local_port_range (and not
  in ip_local_reserved_ports) can be taken, while its server is down, by a peer's reconnect as
  that connection's own source port (TCP self-connection on one host); the restarted server then
  cannot bind it. RPC peers drop such connections at once (rpc/peer.py); ``bind`` also warns about
  such ports so the operator can move them below the range or reserve them.
"""
import logging

import zmq

logger = logging.getLogger(__name__)

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
        hint = ephemeral_port_clash(port) if port else None
        raise OSError("%s cannot bind tcp://%s:%s: %s%s" % (what, host, port, exc,
                                                           "; " + hint if hint else "")) from exc
    if port:
        hint = ephemeral_port_clash(port)
        if hint:
            logger.warning("%s binds tcp://%s:%s: %s", what, host, port, hint)
    return bound_port(sock)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _in_ranges(port, text):
    """True when ``port`` is in a comma-separated list of ports and ranges ("8080,9000-9010")."""
    for part in (text or "").replace("\n", ",").split(","):
        low, _, high = part.strip().partition("-")
        if low.isdigit() and int(low) <= port <= int(high if high.isdigit() else low):
            return True
    return False


def ephemeral_port_clash(port, proc="/proc/sys/net/ipv4"):
    """A sentence saying why ``port`` is risky to configure, or None when it is not (or unknown)."""
    text = _read(proc + "/ip_local_port_range")
    if not text or len(text.split()) != 2:
        return None
    low, high = (int(x) for x in text.split())
    if not low <= port <= high or _in_ranges(port, _read(proc + "/ip_local_reserved_ports")):
        return None
    return ("port %d is inside net.ipv4.ip_local_port_range (%d-%d), so a peer reconnecting to it "
            "while this server is down can take it as its own source port and keep a restarted "
            "server from binding it; use a port below %d or add it to "
            "net.ipv4.ip_local_reserved_ports" % (port, low, high, low))


def set_reconnect(sock):
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
