"""A client that stops reading while its channel is flooded: it is cut off, memory stays bounded."""
import json
import resource

import gevent
import pytest
from gevent import socket

from zpomelo.protocol import package
from zpomelo.testing import rounds, wait_until

pytestmark = pytest.mark.timeout(90)


def _raw_member(port, uid):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill up fast
    sock.connect(("127.0.0.1", port))
    sock.sendall(package.encode(package.HANDSHAKE, b'{"sys":{}}') + package.HANDSHAKE_ACK_PACKAGE)
    route = b"connector.entryHandler.entry"
    body = json.dumps({"uid": uid, "rid": "flood"}).encode()
    sock.sendall(package.encode(package.DATA, bytes([0x00, 0x01, len(route)]) + route + body))
    decoder = package.PackageDecoder(1 << 20)
    answered = False
    for _ in rounds(lambda: answered, seconds=30):     # heartbeats may come first, not forever
        data = sock.recv(65536)
        assert data
        answered = any(t == package.DATA for t, _ in decoder.feed(data))
    assert answered, "no answer to the entry within 30 s"
    return sock


def _heartbeats(sock):
    try:
        for _ in range(120):        # bounded: the test's own timeout is 90 s
            sock.sendall(package.HEARTBEAT_PACKAGE)
            gevent.sleep(0.5)
    except OSError:                 # the server closed it: that is what the test waits for
        pass


def test_slow_reader_is_closed_and_memory_stays_bounded(cluster, connect):
    frontend = cluster["connector-1"]
    slow = _raw_member(cluster.client_port("connector-1"), "slowpoke")
    # it stops reading but stays alive: its heartbeats go on (heartbeat is 1 s here), so only its
    # full queue can close it, however long the flood takes on a busy machine
    beating = gevent.spawn(_heartbeats, slow)
    fast = connect("connector-1")
    fast.request("connector.entryHandler.entry", {"uid": "fast", "rid": "flood"})
    got = []
    fast.on("onChat", got.append)
    slow_session = frontend.session_service.get_by_uid("slowpoke")[0]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    content = "x" * 10_000
    sent = 0
    for sent in range(1, 3001):  # up to 30 MB towards the slow reader
        fast.request("chat.chatHandler.send", {"content": content})
        if slow_session.closed:
            break
    wait_until(lambda: slow_session.closed, 10, message="the slow reader to be closed")
    assert "slow" in (slow_session.conn.close_reason or "") or "queue" in (slow_session.conn.close_reason or "")
    wait_until(lambda: len(got) == sent, 10, message="the fast member to get every push")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    # the write queue limit is 1 MiB: the whole test process may grow a little, never by the flood
    assert grown_mb < 40, "process grew by %.1f MB while flooding %d pushes" % (grown_mb, sent)
    beating.kill()
    print("slow consumer cut after %d pushes of 10 KB; max RSS grew %.1f MB" % (sent, grown_mb))
    slow.close()
