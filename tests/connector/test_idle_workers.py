"""Connections without a greenlet of their own while idle (connector.workers), through real
sockets on 127.0.0.1: idle connections hold no greenlet, frontend code that blocks runs in a
worker (other clients go on meanwhile), deadlines interrupt it, and stop() waits for it."""
import gc
import time

import gevent
import pytest
from gevent.event import Event
from greenlet import greenlet

from zpomelo.connector import ConnectorConfig, Connector
from zpomelo.connector.conn import HandshakeTimeout
from zpomelo.protocol import package
from zpomelo.protocol.codec import ServerCodec
from zpomelo.protocol.dictionary import RouteDictionary
from zpomelo.testing import wait_until

from .helpers import FakeFrontend, RawClient

TRANSPORTS = ["tcp", "ws"]
pytestmark = pytest.mark.timeout(60)


class BlockingFrontend(FakeFrontend):
    """FakeFrontend whose handshake blocks while the client's user data says {"block": true}
    (and replies with user data only to a client that gave a name), and whose on_close blocks
    briefly (a session close callback doing I/O)."""

    def __init__(self, config):
        super().__init__(config)
        self.release = Event()
        self.blocked = 0
        self.interrupted = []       # what a blocked handshake hook was interrupted with
        self.close_finished = []

    def on_handshake(self, conn, sys, user):
        if (user or {}).get("block"):
            self.blocked += 1
            try:
                self.release.wait()
            except BaseException as exc:
                self.interrupted.append(type(exc))
                raise
        if not (user or {}).get("name"):
            return 200, None    # no user data: the connector's shared encoded reply
        return super().on_handshake(conn, sys, user)

    def on_close(self, conn, reason):
        super().on_close(conn, reason)
        gevent.sleep(0.01)          # blocks: must run in a greenlet, never in the hub
        self.close_finished.append(reason)


@pytest.fixture
def server():
    started = []

    def make(**config):
        config.setdefault("codec", ServerCodec())
        frontend = BlockingFrontend(ConnectorConfig(**config))
        connector = Connector(frontend, "127.0.0.1", 0).start()
        started.append(connector)
        return connector, frontend

    yield make
    for connector in started:
        connector.stop(timeout=2.0)


def _greenlets():
    return {id(o) for o in gc.get_objects() if isinstance(o, greenlet) and not o.dead}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_idle_connections_hold_no_greenlet(server, transport):
    connector, frontend = server(heartbeat=30)
    warm = RawClient(connector.port, transport)
    warm.handshake()
    before = _greenlets()
    clients = [RawClient(connector.port, transport) for _ in range(100)]
    for client in clients:
        client.handshake()
    wait_until(lambda: not connector.workers.busy, message="every worker back in the pool")
    assert len(connector.connections) == 101
    assert all(conn._worker is None for conn in connector.connections.values())
    grown = len(_greenlets() - before)
    assert grown < 10, "%d greenlets more for 100 idle connections" % grown
    for client in clients[::10]:    # and they still answer at once
        assert client.request(3, "test.h.echo", {"n": 1}) == {"code": 200, "echo": {"n": 1}}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_blocking_handshake_hook_holds_only_its_own_client(server, transport):
    connector, frontend = server(handshake_timeout=30)
    stuck = RawClient(connector.port, transport)
    stuck.send_raw(package.encode(package.HANDSHAKE, b'{"sys":{},"user":{"block":true}}'))
    wait_until(lambda: frontend.blocked == 1, message="the hook blocking")
    others = [RawClient(connector.port, transport) for _ in range(5)]
    for client in others:
        assert client.handshake()["code"] == 200
        assert client.request(1, "test.h.echo", {"x": 1}) == {"code": 200, "echo": {"x": 1}}
    frontend.release.set()
    ptype, _ = stuck.recv_package()
    assert ptype == package.HANDSHAKE
    stuck.send_raw(package.HANDSHAKE_ACK_PACKAGE)
    assert stuck.recv_package() == (package.HEARTBEAT, b"")
    assert stuck.request(2, "test.h.echo", {}) == {"code": 200, "echo": {}}


def test_handshake_timeout_interrupts_a_blocking_hook(server):
    connector, frontend = server(handshake_timeout=0.3)
    client = RawClient(connector.port)
    client.send_raw(package.encode(package.HANDSHAKE, b'{"sys":{},"user":{"block":true}}'))
    client.wait_closed()
    wait_until(lambda: frontend.close_finished, message="on_close")
    assert frontend.interrupted == [HandshakeTimeout]
    assert list(frontend.closed.values()) == ["handshake timeout"]
    wait_until(lambda: connector.count == 0 and not connector.workers.busy, message="all gone")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_heartbeat_timeout_of_an_idle_connection_closes_it_in_a_worker(server, transport):
    connector, frontend = server(heartbeat=0.1, timeout=0.3)
    client = RawClient(connector.port, transport)
    client.handshake()
    client.wait_closed()
    # on_close blocked (gevent.sleep): it ran in a worker greenlet, not in the hub's callback
    wait_until(lambda: frontend.close_finished == ["heartbeat timeout"], message="on_close done")
    wait_until(lambda: connector.count == 0, message="count back to 0")


def test_a_silent_socket_waits_without_a_worker_and_is_dropped_at_the_deadline(server):
    connector, frontend = server(handshake_timeout=0.3)
    silent = RawClient(connector.port)
    wait_until(lambda: connector.pending == 1, message="the socket sniffing")
    assert not connector.workers.busy
    silent.wait_closed()
    assert silent.eof
    wait_until(lambda: connector.pending == 0, message="dropped")
    assert frontend.connected == []     # never reached the frontend


def test_stop_interrupts_a_blocked_hook_after_its_timeout(server):
    connector, frontend = server(handshake_timeout=30)
    stuck = RawClient(connector.port)
    stuck.send_raw(package.encode(package.HANDSHAKE, b'{"sys":{},"user":{"block":true}}'))
    idle = RawClient(connector.port)
    idle.handshake()
    wait_until(lambda: frontend.blocked == 1, message="the hook blocking")
    started = time.monotonic()
    connector.stop(timeout=0.5)
    assert time.monotonic() - started < 3.0
    idle.wait_closed()
    stuck.wait_closed()
    assert frontend.interrupted == [gevent.GreenletExit]
    assert sorted(frontend.closed.values()) == ["server stopping", "server stopping"]


def test_many_clients_at_once_share_a_bounded_set_of_workers(server):
    connector, _ = server()
    clients = [RawClient(connector.port, "tcp") for _ in range(150)]

    def talk(client, n):
        client.handshake()
        for i in range(5):
            assert client.request(i + 1, "test.h.echo", {"n": n}) == {"code": 200, "echo": {"n": n}}

    jobs = [gevent.spawn(talk, client, n) for n, client in enumerate(clients)]
    gevent.joinall(jobs, timeout=30, raise_error=True)
    assert all(job.successful() for job in jobs)
    wait_until(lambda: not connector.workers.busy, message="every worker back in the pool")
    assert len(connector.workers.parked) <= 64


def test_the_shared_handshake_reply_follows_each_clients_cache(server):
    dictionary = RouteDictionary(["test.h.echo"], [])
    connector, _ = server(heartbeat=2, codec=ServerCodec(dictionary=dictionary))
    for _ in range(2):      # the second round is served from the connector's encoded replies
        full = RawClient(connector.port).handshake(sys={"dictVersion": "stale"})
        assert full["sys"]["routeToCode"] == {"test.h.echo": 1}
        short = RawClient(connector.port).handshake(sys={"dictVersion": dictionary.version})
        assert short["sys"] == {"heartbeat": 2, "useDict": True}
        odd = RawClient(connector.port).handshake(sys={"dictVersion": ["not", "a", "string"]})
        assert "routeToCode" in odd["sys"]
        # a reply with user data is never shared
        named = RawClient(connector.port).handshake(user={"name": "ann"})
        assert named["user"] == {"hello": "ann"}
    assert len(connector.handshake_replies) == 2
