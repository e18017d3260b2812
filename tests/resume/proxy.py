"""A TCP proxy a test controls: cut every connection, freeze them (a network stall), refuse new
ones or hold them (accepted, never answered: a server still starting). Both directions are pumped by gevent greenlets of the test process; a connection lives at
most LIFETIME seconds (the longest resume test's timeout), so no pump outlives its test."""
import logging
import time

import gevent
from gevent import socket
from gevent.event import Event
from gevent.server import StreamServer

from zpomelo.testing import rounds

logger = logging.getLogger(__name__)
LIFETIME = 180.0


class _Pair:
    def __init__(self, client, upstream):
        self.client, self.upstream = client, upstream
        self.frozen = False
        self.closed = Event()
        self.pumps = []

    def close(self):
        self.closed.set()
        for sock in (self.client, self.upstream):
            try:
                sock.close()
            except OSError:
                pass
        for pump in self.pumps:
            pump.kill(block=False)


class TcpProxy:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.refusing = False
        self.holding = False        # accept new connections and never answer them
        self.held = []              # {"accepted": t, "closed": t or None} (monotonic)
        self.accepted = 0
        self.pairs = []
        self.frozen = []
        self._server = StreamServer(("127.0.0.1", 0), self._handle)
        self._server.start()
        self.port = self._server.server_port

    def _handle(self, client, address):
        self.accepted += 1
        if self.refusing:
            client.close()
            return
        if self.holding:
            self._hold(client)
            return
        upstream = socket.create_connection(self.target, timeout=5)
        upstream.settimeout(None)
        pair = _Pair(client, upstream)
        self.pairs.append(pair)
        pair.pumps = [gevent.spawn(self._pump, pair, client, upstream),
                      gevent.spawn(self._pump, pair, upstream, client)]
        if not pair.closed.wait(LIFETIME):
            pair.close()

    def _hold(self, client):
        """Read and drop what the client sends until it gives up and closes (or LIFETIME)."""
        held = {"accepted": time.monotonic(), "closed": None}
        self.held.append(held)
        try:
            for _ in rounds(seconds=LIFETIME):
                if not client.recv(65536):
                    break
        except OSError:
            pass
        held["closed"] = time.monotonic()
        client.close()

    @staticmethod
    def _pump(pair, src, dst):
        try:
            for _ in rounds(lambda: pair.frozen, seconds=LIFETIME):
                data = src.recv(65536)
                if not data or pair.frozen:
                    break
                dst.sendall(data)
        except OSError:
            pass
        if not pair.frozen:
            pair.close()

    def cut(self):
        """Close both sides of every connection now (a dropped link)."""
        pairs, self.pairs = self.pairs, []
        for pair in pairs:
            pair.close()

    def freeze(self):
        """Stop moving bytes on every current connection, sockets left open (a stalled link)."""
        for pair in self.pairs:
            pair.frozen = True
        self.frozen.extend(self.pairs)
        self.pairs = []

    def close(self):
        self._server.close()
        self.cut()
        for pair in self.frozen:
            pair.close()
