"""A blocking client of the master's admin verbs (what the command line uses).

Its frames are sealed with the project's cluster secret and the master's answer is opened with it
(master/wire.py); with CURVE keys the DEALER is a CURVE client. So the CLI needs the project's
config/keys/ (it reads them from the project directory, -d).
"""
import socket
import time

import zmq

from zpomelo.errors import ZpomeloError
from zpomelo.master import wire
from zpomelo.rpc import security


_HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                     | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


class AdminError(ZpomeloError):
    """The master refused a request, or could not be reached."""


class AdminClient:
    def __init__(self, host, port, username, password, timeout=10.0, keys=None):
        """keys: the project's ClusterKeys (security.load_keys); the secret is required."""
        self.host = host
        self.port = int(port)
        self.username = username
        self.password = password
        self.timeout = timeout
        if keys is None or keys.secret is None:
            raise AdminError("cannot talk to the master without the cluster secret: %s"
                             % ("no project keys were given" if keys is None else
                                "%s/%s is missing; run the command in the project directory "
                                "(or give it with -d), or create the keys with `zpomelo keys`"
                                % (keys.directory, security.SECRET_FILE)))
        self.keys = keys
        self._sealer = wire.Sealer(keys.secret, wire.TO_MASTER, wire.FROM_MASTER)

    def check_reachable(self, timeout=2.0):
        try:
            socket.create_connection((self.host, self.port), timeout=timeout).close()
        except OSError as e:
            raise AdminError("no master is listening on %s:%d (%s); start the cluster with "
                             "`zpomelo start`, or give the master's address with -h/-P"
                             % (self.host, self.port, e.strerror or e)) from None

    def call(self, verb, args=None, timeout=None):
        """Run an admin verb and return its result; raise AdminError with the master's message."""
        self.check_reachable()
        timeout = self.timeout if timeout is None else timeout
        context = zmq.Context.instance()
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        security.secure_client(sock, self.keys)
        monitor = sock.get_monitor_socket(_HANDSHAKE_FAILED) if self.keys.curve else None
        try:
            sock.connect("tcp://%s:%d" % (self.host, self.port))
            sock.send(self._sealer.seal(wire.ADMIN, self.username, self.password, verb,
                                        args or {}))
            frame = self._wait_answer(sock, monitor, verb, timeout)
        finally:
            if monitor is not None:
                sock.disable_monitor()
                monitor.close(linger=0)
            sock.close()
        try:
            reply = self._sealer.open(frame)
        except wire.Unauthenticated as e:
            if wire.unpack(frame) == [wire.ERROR, wire.UNAUTHENTICATED_MESSAGE]:
                raise AdminError("the master refused the request: %s"
                                 % wire.UNAUTHENTICATED_MESSAGE) from None
            raise AdminError("the answer on %s:%d is not from this cluster's master: %s"
                             % (self.host, self.port, e)) from None
        if reply is None or len(reply) < 2:
            raise AdminError("the master sent a malformed answer to %r" % verb)
        if reply[0] == wire.OK:
            return reply[1]
        raise AdminError(str(reply[1]))

    def _wait_answer(self, sock, monitor, verb, timeout):
        """The master's frame; with CURVE, a refused handshake is reported at once."""
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        if monitor is not None:
            poller.register(monitor, zmq.POLLIN)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            ready = dict(poller.poll(max(0.0, left) * 1000)) if left > 0 else {}
            if sock in ready:
                return sock.recv()
            if monitor is not None and monitor in ready:
                event = monitor.recv_multipart()
                raise AdminError(
                    "the master on %s:%d refused the CURVE handshake (%s): this project's "
                    "config/keys/ is not the cluster's; copy the cluster's config/keys/ here"
                    % (self.host, self.port, _event_name(event)))
            if left <= 0:
                raise AdminError("the master on %s:%d did not answer %r within %.0f s"
                                 % (self.host, self.port, verb, timeout))


def _event_name(event):
    from zmq.utils.monitor import parse_monitor_message
    try:
        return zmq.Event(parse_monitor_message(event)["event"]).name
    except Exception:       # an event we cannot parse still means the handshake failed
        return "handshake failed"
