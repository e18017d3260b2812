"""Bad client input is counted by kind and logged as a bounded, rate-limited summary.

A fuzzing run wrote one INFO line per malformed package (156 MB for a million): any client could
fill the operator's disk. Now a burst writes about one line per interval however large it is,
and the counts (read by `zpomelo list` through the server's info()) say what arrived.
"""
import logging

import pytest

from zpomelo.connector import badinput
from zpomelo.protocol import message, package

from zpomelo.testing import wait_until

from .helpers import RawClient, start_connector

pytestmark = pytest.mark.timeout(60)
BURST = 3000


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def log_lines():
    handler = Lines()
    loggers = [logging.getLogger("zpomelo")]    # every zpomelo module's records propagate here
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield handler.records
    for lg, level in zip(loggers, levels):
        lg.removeHandler(handler)
        lg.setLevel(level)


def test_a_burst_of_malformed_input_writes_a_bounded_log_and_counts_each_kind(log_lines):
    connector, frontend = start_connector(heartbeat=None)
    connector.bad_input.interval = 0.3
    try:
        # one connection per malformed package (each closes its connection)
        for _ in range(BURST // 10):
            client = RawClient(connector.port)
            client.send_raw(b"\x09\x00\x00\x01x")           # package type 9 does not exist
            client.wait_closed()
            client.close()
        # thousands of bad bodies and bad messages on one working connection
        client = RawClient(connector.port)
        client.handshake()
        bad_body = package.encode(package.DATA, message.encode_request(1, "a.b.c", b"{not json"))
        bad_message = package.encode(package.DATA, b"\x30\x01\x00")
        server_only = package.encode(package.DATA, message.encode_push("a.b.c", b"{}"))
        client.send_raw((bad_body + bad_message + server_only) * BURST)
        for _ in range(BURST):                               # each bad body is answered with 500
            _, msg_id, _, body = client.recv_data()
            assert (msg_id, body) == (1, {"code": 500})
        assert client.request(2, "a.b.c", {"still": "here"})["echo"] == {"still": "here"}
        counts = connector.bad_input.counts
        wait_until(lambda: counts.get(badinput.MALFORMED_PACKAGE) == BURST // 10, message="counts")
        assert counts[badinput.BAD_BODY] == BURST
        assert counts[badinput.BAD_MESSAGE] == 2 * BURST     # a bad flag; a PUSH from a client
        # the summary of the burst's tail is written when its interval ends
        wait_until(lambda: any("in the last" in r.getMessage() for r in log_lines), message="summary")
        client.close()
    finally:
        connector.stop()
    info = [r for r in log_lines if r.levelno >= logging.INFO and "listening" not in r.getMessage()]
    # 3 * BURST + BURST // 10 bad inputs: one line at once, then at most one per 0.3 s interval
    assert 2 <= len(info) <= 30, [r.getMessage() for r in info]
    summaries = " ".join(r.getMessage() for r in info)
    assert "malformed package" in summaries and "bad body" in summaries


def test_refused_upgrades_are_counted_not_logged_one_by_one(log_lines):
    connector, _ = start_connector(heartbeat=None)
    connector.bad_input.interval = 60
    try:
        for _ in range(50):
            client = RawClient(connector.port)
            client.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            for _ in range(100):        # read the HTTP 400 up to the server's close
                data = client.sock.recv(4096)
                if not data:
                    break
                answer += data
            assert answer.startswith(b"HTTP/1.1 400")
            client.close()
        wait_until(lambda: connector.bad_input.counts.get(badinput.BAD_UPGRADE) == 50, message="50 counted")
    finally:
        connector.stop()
    lines = [r.getMessage() for r in log_lines if "WebSocket upgrade" in r.getMessage()]
    assert len(lines) == 2, lines      # the first at once, the rest summed when the connector stops
    assert "49 bad websocket upgrade" in lines[1]
