"""A forwarded request's JSON body crosses to the backend as the client's bytes (decoded there)
and its answer comes back already encoded; bad bodies are still counted and answered 500, in order.

Real cluster (InProcessCluster, tests/apps/jsonvalues: connector-1 forwards echo.* to echo-1) and
a real TCP client sending raw body bytes.
"""
import os

import pytest
from gevent.event import Event

from zpomelo.connector import badinput
from zpomelo.protocol import message, package
from zpomelo.protocol.codec import ClientCodec, RawBody, ServerCodec
from zpomelo.errors import BodyError
from zpomelo.testing import InProcessCluster

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "apps", "jsonvalues")
pytestmark = pytest.mark.timeout(60)


class RawBytesCodec(ClientCodec):
    """Sends a bytes body as it is (the client would otherwise encode it as JSON)."""

    def encode_request(self, msg_id, route, obj):
        if isinstance(obj, bytes):
            return package.encode_data(message.encode_request(msg_id, route, obj))
        return super().encode_request(msg_id, route, obj)


@pytest.fixture(scope="module")
def cluster():
    with InProcessCluster(APP_DIR, "test") as cluster:
        yield cluster


def test_forwarded_bodies_pass_through_and_bad_ones_are_counted_and_answered_in_order(cluster):
    client = cluster.connect("connector-1", request_timeout=5)
    client._codec.__class__ = RawBytesCodec
    counts = cluster["connector-1"].connector.bad_input.counts
    before = counts.get(badinput.BAD_BODY, 0)
    # spacing, key order and number forms come back as JSON of the same value
    assert client.request("echo.echoHandler.echo", b'{ "b": 1.50, "a": [1, 2] }') == {
        "msg": {"b": 1.5, "a": [1, 2]}}
    answers = {}
    done = Event()

    def answered(rid):
        def callback(error, body):
            answers[rid] = (len(answers), body if error is None else error)
            if len(answers) == 5:
                done.set()
        return callback

    rids = []
    for body in (b'{"n": 1}', b'{"n": ', b'[1, 2]', b'\xff\xfe', b'{"n": 2}'):
        rids.append(client.request_async("echo.echoHandler.echo", body, answered(len(rids))))
    assert done.wait(5)
    # answered in request order (a request's index is the order its answer arrived in)
    assert [answers[i][0] for i in range(5)] == [0, 1, 2, 3, 4]
    assert [answers[i][1] for i in range(5)] == [{"msg": {"n": 1}}, {"code": 500}, {"code": 500}, {"code": 500},
                       {"msg": {"n": 2}}]
    assert counts.get(badinput.BAD_BODY, 0) - before == 3
    # a bad body on a route with a bad name is still answered as a bad body
    assert client.request("echo.nothing", b'{"n": ') == {"code": 500}
    assert counts.get(badinput.BAD_BODY, 0) - before == 4
    client.close()


def test_raw_body_decodes_once_reads_as_a_mapping_and_refuses_bad_json():
    body = RawBody(b'{"uid": "u1", "n": 2}', 7, "chat.h.m")
    assert body["uid"] == "u1" and body.get("x") is None and dict(body) == {"uid": "u1", "n": 2}
    assert body.decode() is body.decode()
    with pytest.raises(BodyError) as info:
        RawBody(b'[1]', 9, "chat.h.m").decode()
    assert info.value.msg_id == 9 and info.value.route == "chat.h.m"
    assert RawBody(b"", 1, "a.b.c").decode() == {}


def test_decode_lazy_keeps_request_bodies_and_decodes_notifies():
    codec = ServerCodec()
    mtype, msg_id, route, body = codec.decode_lazy(message.encode_request(3, "a.b.c", b'{"x":1}'))
    assert (mtype, msg_id, route) == (message.REQUEST, 3, "a.b.c")
    assert isinstance(body, RawBody) and body.data == b'{"x":1}'
    assert codec.decode_lazy(message.encode_notify("a.b.c", b'{"x":1}')) == (
        message.NOTIFY, 0, "a.b.c", {"x": 1})
    with pytest.raises(BodyError):   # a notify's bad body is refused at once: nobody answers it
        codec.decode_lazy(message.encode_notify("a.b.c", b'{"x":'))
