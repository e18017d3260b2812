"""RpcServer + RpcClient in one process over real tcp sockets on 127.0.0.1."""
import socket
import time

import gevent
import pytest
import zmq
from gevent.event import Event

from zpomelo.errors import RpcError, RpcTimeout, ServerGone
from zpomelo.rpc.envelope import pack_frame

from zpomelo.testing import wait_until


class Forbidden(Exception):
    code = 403


def echo_dispatch(service, method, args):
    if method == "fail":
        raise ValueError("bad input: %s" % (args[0],))
    if method == "forbid":
        raise Forbidden("not yours")
    if method == "sleep":
        gevent.sleep(args[0])
        return "slept"
    if method == "unserializable":
        return {1, 2}
    return [service, method, args]


@pytest.fixture
def pair(make_server, make_client):
    server = make_server(echo_dispatch)
    client = make_client("front-1")
    client.add_peer("back-1", server.endpoint)
    return server, client


def test_server_binds_port_zero_and_reports_endpoint(make_server):
    server = make_server(echo_dispatch)
    assert server.port > 0
    assert server.endpoint == "tcp://127.0.0.1:%d" % server.port


def test_call_returns_result(pair):
    _server, client = pair
    assert client.call("back-1", "chat.chatRemote", "add", ["u1", 3]) == ["chat.chatRemote", "add", ["u1", 3]]
    assert client.peer_state("back-1") == "up"


def test_notify_reaches_dispatch_without_reply(make_server, make_client):
    seen = []
    arrived = Event()

    def dispatch(service, method, args):
        seen.append((service, method, args))
        arrived.set()

    server = make_server(dispatch)
    client = make_client()
    client.add_peer("b", server.endpoint)
    client.notify("b", "svc", "ping", [1, "x"])
    assert arrived.wait(timeout=5)
    assert seen == [("svc", "ping", [1, "x"])]
    assert server.stats["notifies"] == 1 and server.stats["requests"] == 0


def test_call_async_invokes_callback_from_client_greenlet(pair):
    _server, client = pair
    results = []
    done = Event()

    def callback(error, result):
        results.append((error, result, gevent.getcurrent()))
        done.set()

    caller = gevent.getcurrent()
    client.call_async("back-1", "s", "m", [42], timeout=5, callback=callback)
    assert done.wait(timeout=5)
    error, result, greenlet = results[0]
    assert error is None and result == ["s", "m", [42]]
    assert greenlet is not caller


def test_ten_thousand_concurrent_calls_are_matched_to_their_callers(pair):
    _server, client = pair
    mismatches = []

    def caller(index):
        result = client.call("back-1", "svc", "echo", [index, "x" * (index % 50)], timeout=30)
        if result != ["svc", "echo", [index, "x" * (index % 50)]]:
            mismatches.append((index, result))

    start = time.monotonic()
    greenlets = [gevent.spawn(caller, i) for i in range(10_000)]
    gevent.joinall(greenlets, timeout=60, raise_error=True)
    assert all(g.successful() for g in greenlets)
    assert mismatches == []
    assert time.monotonic() - start < 60


def test_ten_thousand_async_calls_batch_and_match(pair):
    server, client = pair
    results = {}
    done = Event()

    def make_callback(index):
        def callback(error, result):
            results[index] = (error, result)
            if len(results) == 10_000:
                done.set()
        return callback

    for index in range(10_000):
        client.call_async("back-1", "svc", "m", [index], 30, make_callback(index))
    assert done.wait(timeout=60)
    assert all(results[i] == (None, ["svc", "m", [i]]) for i in range(10_000))
    assert server.stats["requests"] == 10_000


def test_remote_exception_arrives_with_type_code_and_message(pair):
    _server, client = pair
    with pytest.raises(RpcError) as info:
        client.call("back-1", "svc", "fail", ["room 7"])
    assert info.value.remote_type == "ValueError"
    assert info.value.code == 500
    assert "bad input: room 7" in str(info.value)
    assert info.value.server_id == "back-1"
    with pytest.raises(RpcError) as info:
        client.call("back-1", "svc", "forbid", [])
    assert (info.value.remote_type, info.value.code) == ("Forbidden", 403)


def test_unserializable_result_becomes_an_error_reply(pair):
    _server, client = pair
    with pytest.raises(RpcError) as info:
        client.call("back-1", "svc", "unserializable", [])
    assert info.value.remote_type == "TypeError"
    assert client.call("back-1", "svc", "echo", [1]) == ["svc", "echo", [1]]


def test_unserializable_argument_raises_in_caller(pair):
    _server, client = pair
    with pytest.raises(TypeError):
        client.call("back-1", "svc", "echo", [object()])
    assert client.call("back-1", "svc", "echo", [2]) == ["svc", "echo", [2]]


def test_timeout_raises_within_deadline_and_names_call_and_server(pair):
    _server, client = pair
    start = time.monotonic()
    with pytest.raises(RpcTimeout) as info:
        client.call("back-1", "area.areaRemote", "sleep", [2.0], timeout=0.3)
    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 0.6
    assert "area.areaRemote.sleep" in str(info.value) and "back-1" in str(info.value)
    assert client.call("back-1", "s", "echo", [1]) == ["s", "echo", [1]]


def test_async_timeout_calls_back_once(pair):
    _server, client = pair
    outcomes = []
    done = Event()

    def callback(error, result):
        outcomes.append(error)
        done.set()

    client.call_async("back-1", "s", "sleep", [0.5], 0.1, callback)
    assert done.wait(timeout=3)
    wait_until(lambda: client.stats["late_replies"] == 1, message="the late reply to be dropped")
    assert len(outcomes) == 1 and isinstance(outcomes[0], RpcTimeout)


def test_unknown_peer_raises_server_gone(make_client):
    client = make_client()
    with pytest.raises(ServerGone):
        client.call("nobody", "s", "m", [])
    with pytest.raises(ServerGone):
        client.notify("nobody", "s", "m", [])
    errors = []
    client.call_async("nobody", "s", "m", [], 1, lambda error, result: errors.append(error))
    assert len(errors) == 1 and isinstance(errors[0], ServerGone)


def test_remove_peer_fails_pending_calls_at_once(pair):
    _server, client = pair
    errors = []
    caller = gevent.spawn(lambda: client.call("back-1", "s", "sleep", [5], timeout=10))
    client.call_async("back-1", "s", "sleep", [5], 10, lambda error, result: errors.append(error))
    gevent.sleep(0)  # let the caller greenlet send
    start = time.monotonic()
    client.remove_peer("back-1")
    caller.join(timeout=2)
    assert time.monotonic() - start < 1
    assert isinstance(caller.exception, ServerGone)
    assert len(errors) == 1 and isinstance(errors[0], ServerGone)
    assert client.peer_state("back-1") is None


def test_re_adding_a_peer_with_a_new_endpoint_moves_it(make_server, make_client):
    first = make_server(lambda s, m, a: "first")
    second = make_server(lambda s, m, a: "second")
    client = make_client()
    client.add_peer("b", first.endpoint)
    assert client.call("b", "s", "m", []) == "first"
    client.add_peer("b", first.endpoint)  # same endpoint: no-op
    assert client.call("b", "s", "m", []) == "first"
    client.add_peer("b", second.endpoint)
    assert client.call("b", "s", "m", []) == "second"


def test_pool_limit_makes_the_reader_wait_then_everything_completes(make_server, make_client):
    release = Event()
    started = []

    def dispatch(service, method, args):
        started.append(args[0])
        release.wait(timeout=10)
        return args[0]

    server = make_server(dispatch, pool_size=2)
    client = make_client()
    client.add_peer("b", server.endpoint)
    callers = [gevent.spawn(client.call, "b", "s", "m", [i], 10) for i in range(6)]
    wait_until(lambda: server.stats["backpressure_waits"] >= 1, message="the reader to wait for a pool slot")
    assert server.in_flight == 2
    assert len(started) == 2  # the other four are not dispatched while the pool is full
    release.set()
    gevent.joinall(callers, timeout=10, raise_error=True)
    assert sorted(g.value for g in callers) == list(range(6))
    assert len(started) == 6


def test_malformed_frames_are_dropped_and_the_server_keeps_serving(make_server, make_client):
    server = make_server(echo_dispatch)
    context = zmq.Context.instance()
    raw = context.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(server.endpoint)
    try:
        junk = [
            [b"\xc1\xc1\xc1"],
            [b""],
            [pack_frame([[9, 1, "s", "m", []]])],
            [pack_frame([[0, 1, "s"]])],
            [b"two", b"frames"],
            [b"\x92\x01"],
        ]
        for parts in junk:
            raw.send_multipart(parts)
        wait_until(lambda: server.stats["malformed"] == len(junk), message="all junk frames to be seen")
        raw.send(pack_frame([[0, 99, "s", "m", ["after junk"]]]))
        wait_until(lambda: raw.poll(0), message="the reply to the valid frame")  # poll(0): never block the hub
        from zpomelo.rpc.envelope import unpack_replies

        assert unpack_replies(raw.recv()) == [[2, 99, True, ["s", "m", ["after junk"]]]]
    finally:
        raw.close()
    client = make_client()
    client.add_peer("b", server.endpoint)
    assert client.call("b", "s", "m", [1]) == ["s", "m", [1]]


def test_stop_drains_in_flight_calls(make_client):
    from zpomelo.rpc import RpcServer

    server = RpcServer("127.0.0.1", 0, echo_dispatch).start()
    client = make_client()
    client.add_peer("b", server.endpoint)
    caller = gevent.spawn(client.call, "b", "s", "sleep", [0.2], 5)
    wait_until(lambda: server.in_flight == 1, message="the call to start")
    server.stop(drain_timeout=2)
    caller.join(timeout=3)
    assert caller.value == "slept"


def reserve_port():
    """A loopback port nothing listens on, held by a bound (not listening) SO_REUSEADDR socket.

    Freeing a port-0 port and binding it again later races with our own client: its reconnects
    to that free port can get it as their ephemeral source port and connect to themselves (the
    file failed this way whenever it ran whole). The kernel never hands out a port that a socket
    has bind()ed as a connect's source port, and ZeroMQ's listener (SO_REUSEADDR too) may bind
    it beside a socket that does not listen."""
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    return holder, holder.getsockname()[1]


def test_calls_queue_until_a_late_server_binds(make_client):
    from zpomelo.rpc import RpcServer

    holder, port = reserve_port()
    client = make_client()
    client.add_peer("late", "tcp://127.0.0.1:%d" % port)
    assert client.peer_state("late") == "connecting"
    caller = gevent.spawn(client.call, "late", "s", "m", [1], 5)
    gevent.sleep(0)
    try:
        server = RpcServer("127.0.0.1", port, echo_dispatch).start()
    finally:
        holder.close()
    try:
        caller.join(timeout=5)
        assert caller.value == ["s", "m", [1]]
    finally:
        server.stop(drain_timeout=0.1)


def test_a_connection_to_itself_is_dropped_and_never_taken_for_the_server(make_client, caplog):
    """Force what the kernel does by chance: connect from the server's port to the server's port
    (ZeroMQ's "source;destination" endpoint), with no server there. TCP's simultaneous open makes
    the DEALER its own peer; the monitor must see it, drop it and never report the peer up, and a
    call must not be answered by our own request coming back."""
    holder, port = reserve_port()
    holder.close()
    client = make_client()
    client.add_peer("ghost", "tcp://127.0.0.1:%d;127.0.0.1:%d" % (port, port))
    peer = client._peers["ghost"]
    wait_until(lambda: peer.self_connects >= 2, message="self-connections seen and dropped twice")
    assert client.peer_state("ghost") == "connecting"
    with pytest.raises(RpcTimeout):
        client.call("ghost", "s", "m", [1], 0.3)
    assert "connected to itself" in caplog.text


def test_binding_a_configured_port_inside_the_ephemeral_range_warns(tmp_path, caplog):
    from zpomelo.rpc import zsock

    (tmp_path / "ip_local_port_range").write_text("32768\t60999\n")
    (tmp_path / "ip_local_reserved_ports").write_text("40000,41000-41010\n")
    assert "inside net.ipv4.ip_local_port_range (32768-60999)" in zsock.ephemeral_port_clash(50000, str(tmp_path))
    assert zsock.ephemeral_port_clash(3150, str(tmp_path)) is None           # below the range
    assert zsock.ephemeral_port_clash(40000, str(tmp_path)) is None          # reserved
    assert zsock.ephemeral_port_clash(41005, str(tmp_path)) is None
    assert zsock.ephemeral_port_clash(50000, str(tmp_path / "missing")) is None
    # on this machine: a port from port 0 lies in the live range, and binding it by number warns
    holder, port = reserve_port()
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    try:
        assert zsock.bind(sock, "127.0.0.1", port, "test server") == port
    finally:
        sock.close(linger=0)
        holder.close()
    if zsock.ephemeral_port_clash(port):
        assert "test server binds tcp://127.0.0.1:%d: port %d is inside" % (port, port) in caplog.text
