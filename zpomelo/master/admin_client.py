"""A blocking client of the master's admin verbs (what the command line uses)."""
import socket

import zmq

from zpomelo.errors import ZpomeloError
from zpomelo.master import wire


class AdminError(ZpomeloError):
    """The master refused a request, or could not be reached."""


class AdminClient:
    def __init__(self, host, port, username, password, timeout=10.0):
        self.host = host
        self.port = int(port)
        self.username = username
        self.password = password
        self.timeout = timeout

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
        try:
            sock.connect("tcp://%s:%d" % (self.host, self.port))
            sock.send(wire.pack(wire.ADMIN, self.username, self.password, verb, args or {}))
            if not sock.poll(timeout * 1000, zmq.POLLIN):
                raise AdminError("the master on %s:%d did not answer %r within %.0f s"
                                 % (self.host, self.port, verb, timeout))
            reply = wire.unpack(sock.recv())
        finally:
            sock.close()
        if reply is None or len(reply) < 2:
            raise AdminError("the master sent a malformed answer to %r" % verb)
        if reply[0] == wire.OK:
            return reply[1]
        raise AdminError(str(reply[1]))
