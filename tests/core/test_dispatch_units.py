"""Units of the application core that need no sockets: routing, ordering, filters, loading."""
import textwrap

import gevent
import pytest

from zpomelo import filters, loader
from zpomelo.errors import HandlerError, RouteError, ServerGone
from zpomelo.handler import FilterChain, HandlerService
from zpomelo.router import crc32_key, parse_route, pick_by_key
from zpomelo.session import SessionError, SessionService


class FakeConn:
    _next = 0

    def __init__(self):
        FakeConn._next += 1
        self.id = FakeConn._next
        self.address = ("127.0.0.1", 1000 + self.id)
        self.sent = []
        self.kicked = None

    def send(self, data):
        self.sent.append(data)

    def kick(self, reason):
        self.kicked = reason


def test_parse_route_accepts_three_parts_only():
    assert parse_route("chat.chatHandler.send") == ("chat", "chatHandler", "send")
    for bad in ["chat.send", "a.b.c.d", "..", "chat..send", "", 5]:
        with pytest.raises(RouteError):
            parse_route(bad)


def test_pick_by_key_is_crc32_modulo_in_id_order():
    class R:
        def __init__(self, i):
            self.id = i
    servers = [R("chat-1"), R("chat-2"), R("chat-3")]
    import zlib
    for key in ["alice", "bob", "room-7", 12345]:
        expected = servers[(zlib.crc32(str(key).encode()) & 0xFFFFFFFF) % 3].id
        assert pick_by_key(servers, key) == expected
    assert crc32_key(b"x") == crc32_key("x")
    with pytest.raises(ServerGone):
        pick_by_key([], "k")


def test_responses_are_released_in_request_order():
    service = SessionService("connector-1")
    conn = FakeConn()
    session = service.create(conn)
    for msg_id in (1, 2, 3, 4):
        session.expect(msg_id)
    session.respond(3, b"r3")
    session.respond(2, b"r2")
    assert conn.sent == []
    session.respond(1, b"r1")
    assert conn.sent == [b"r1", b"r2", b"r3"]
    session.respond(4, b"r4")
    assert conn.sent == [b"r1", b"r2", b"r3", b"r4"]
    assert session.in_flight == 0


def test_bind_unbind_single_session_and_close_callbacks():
    service = SessionService("connector-1", single_session=True)
    a, b = FakeConn(), FakeConn()
    sa, sb = service.create(a), service.create(b)
    closed = []
    sa.on_closed(lambda s, reason: closed.append((s.uid, reason)))
    sa.bind("u1")
    with pytest.raises(SessionError):
        sa.bind("u2")
    sb.bind("u1")
    assert a.kicked == "another login with the same uid"
    service.close(sa.id, "kicked")
    assert closed == [("u1", "kicked")]
    assert service.get_by_uid("u1") == [sb]
    with pytest.raises(SessionError):
        sb.unbind("other")
    sb.unbind("u1")
    assert service.get_by_uid("u1") == []
    assert service.send_to_uids(["u1"], b"x") == 0


def _service(functions, chain=None):
    return HandlerService(app="APP", server_type="area", services={"h": functions},
                          filters=chain or FilterChain())


def test_handler_response_rules():
    def nothing(app, msg, session):
        return None

    def echo(app, msg, session):
        assert app == "APP"
        return msg

    def refuse(app, msg, session):
        raise HandlerError({"error": "no"})

    def crash(app, msg, session):
        raise KeyError("boom")

    hs = _service({"nothing": nothing, "echo": echo, "refuse": refuse, "crash": crash})
    assert hs.handle("area.h.nothing", {}, None) == {}
    assert hs.handle("area.h.echo", {"a": 1}, None) == {"a": 1}
    assert hs.handle("area.h.refuse", {}, None) == {"error": "no", "code": 500}
    body = hs.handle("area.h.crash", {}, None)
    assert body["code"] == 500 and "KeyError" in body["error"]
    assert hs.handle("area.h.missing", {}, None)["code"] == 500


def test_filters_run_in_onion_order_and_can_short_circuit():
    order = []

    class F:
        def __init__(self, name, stop=False):
            self.name, self.stop = name, stop

        def before(self, route, msg, session):
            order.append("before " + self.name)
            return {"code": 403} if self.stop else None

        def after(self, route, msg, session, resp, error):
            order.append("after " + self.name)

    chain = FilterChain()
    chain.add(F("a"))
    chain.add(F("b"))
    hs = _service({"x": lambda app, msg, session: order.append("handler") or {"ok": 1}}, chain)
    assert hs.handle("area.h.x", {}, None) == {"ok": 1}
    assert order == ["before a", "before b", "handler", "after b", "after a"]
    order.clear()
    chain.add(F("c", stop=True))
    assert hs.handle("area.h.x", {}, None) == {"code": 403}
    assert "handler" not in order


@pytest.mark.timeout(10)
def test_timeout_filter_answers_a_handler_that_never_returns():
    chain = FilterChain()
    chain.add(filters.timeout(0.05))
    hs = _service({"hang": lambda app, msg, session: gevent.sleep(30)}, chain)
    body = hs.handle("area.h.hang", {}, None)
    assert body["code"] == 500 and "timed out" in body["error"]


@pytest.mark.timeout(10)
def test_serial_filter_runs_one_session_in_arrival_order():
    chain = FilterChain()
    chain.add(filters.serial())
    seen = []

    def slow(app, msg, session):
        seen.append(("start", msg["n"]))
        gevent.sleep(0.01 if msg["n"] == 0 else 0)
        seen.append(("end", msg["n"]))

    class S:
        frontend_id, id = "c1", 7

    hs = _service({"slow": slow}, chain)
    jobs = [gevent.spawn(hs.handle, "area.h.slow", {"n": n}, S()) for n in range(3)]
    gevent.joinall(jobs, timeout=5)
    assert seen == [("start", 0), ("end", 0), ("start", 1), ("end", 1), ("start", 2), ("end", 2)]


def test_loader_exposes_only_public_functions(tmp_path):
    handler_dir = tmp_path / "app" / "servers" / "area" / "handler"
    handler_dir.mkdir(parents=True)
    (handler_dir / "areaHandler.py").write_text(textwrap.dedent("""
        from os.path import join
        import json

        def move(app, msg, session):
            return {}

        def _private(app, msg, session):
            return {}

        def __dunder__(app, msg, session):
            return {}

        class NotAHandler:
            pass

        helper = lambda: 1
    """))
    (handler_dir / "_hidden.py").write_text("def x(app, msg, session):\n    return {}\n")
    services = loader.load_services(str(tmp_path), "area", "handler")
    assert list(services) == ["areaHandler"]
    assert list(services["areaHandler"]) == ["move"]
    assert loader.scan_handler_routes(str(tmp_path)) == ["area.areaHandler.move"]


def test_toobusy_filter_rejects_while_the_loop_lags():
    class Lagging:
        lag = 0.0

        def start(self):
            pass
    monitor = Lagging()
    chain = FilterChain()
    chain.add(filters.TooBusyFilter(max_lag=0.05, monitor=monitor))
    hs = _service({"x": lambda app, msg, session: {"ok": 1}}, chain)
    assert hs.handle("area.h.x", {}, None) == {"ok": 1}
    monitor.lag = 0.2
    assert hs.handle("area.h.x", {}, None) == {"code": 500, "error": "server too busy"}


@pytest.mark.timeout(10)
def test_lag_monitor_measures_a_blocked_loop():
    import time
    monitor = filters.LagMonitor(interval=0.01)
    monitor.start()
    try:
        gevent.sleep(0.03)  # let the monitor take a first reading
        time.sleep(0.2)  # block the whole loop on purpose: that is the lag to measure
        from zpomelo.testing import wait_until
        assert wait_until(lambda: monitor.lag > 0.05, 2, message="the lag to be seen")
    finally:
        monitor.stop()
