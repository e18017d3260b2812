"""Bus: XPUB/SUB push bus with subscription tracking and the fallback before subscription."""
import gevent

from zpomelo.testing import wait_until


class Inbox:
    def __init__(self):
        self.messages = []

    def __call__(self, kind, payload):
        self.messages.append((kind, payload))


def test_bus_binds_port_zero(make_bus):
    bus = make_bus("back-1")
    assert bus.port > 0 and bus.endpoint == "tcp://127.0.0.1:%d" % bus.port


def test_fallback_before_subscription_then_pub_path(make_bus):
    fallback_calls = []
    backend = make_bus("back-1", fallback=lambda frontend_id, payload: fallback_calls.append((frontend_id, payload)))
    inbox = Inbox()
    frontend = make_bus("conn-1", on_message=inbox)

    backend.publish_frontend("conn-1", b"before")
    assert fallback_calls == [("conn-1", b"before")]
    assert inbox.messages == []

    frontend.add_peer("back-1", backend.endpoint)
    wait_until(lambda: backend.subscribed_frontends() == {"conn-1"}, message="the subscription to reach the XPUB")
    for index in range(100):
        backend.publish_frontend("conn-1", b"after-%d" % index)
    wait_until(lambda: len(inbox.messages) == 100, message="the pushes")
    assert inbox.messages == [("f", b"after-%d" % index) for index in range(100)]  # in order
    assert fallback_calls == [("conn-1", b"before")]  # no more fallbacks
    assert backend.stats["published"] == 100 and backend.stats["fallbacks"] == 1


def test_frontend_topic_is_exact_not_a_prefix(make_bus):
    backend = make_bus("back-1", fallback=lambda f, p: None)
    short, long_ = Inbox(), Inbox()
    conn1 = make_bus("conn-1", on_message=short)
    conn10 = make_bus("conn-10", on_message=long_)
    conn1.add_peer("back-1", backend.endpoint)
    conn10.add_peer("back-1", backend.endpoint)
    wait_until(lambda: backend.subscribed_frontends() == {"conn-1", "conn-10"}, message="both subscriptions")
    backend.publish_frontend("conn-10", b"for ten")
    backend.publish_frontend("conn-1", b"for one")
    wait_until(lambda: short.messages and long_.messages, message="both pushes")
    assert short.messages == [("f", b"for one")]
    assert long_.messages == [("f", b"for ten")]


def test_global_publish_reaches_all_subscribers_and_falls_back_for_the_rest(make_bus):
    fallback_calls = []
    backend = make_bus("back-1", fallback=lambda f, p: fallback_calls.append((f, p)))
    inboxes = {}
    for name in ("conn-1", "conn-2", "conn-3"):
        inboxes[name] = Inbox()
        make_bus(name, on_message=inboxes[name]).add_peer("back-1", backend.endpoint)
    wait_until(lambda: len(backend.subscribed_frontends()) == 3, message="three subscriptions")
    backend.publish_global(b"hello all", ["conn-1", "conn-2", "conn-3", "conn-4"])
    wait_until(lambda: all(inbox.messages for inbox in inboxes.values()), message="the global push everywhere")
    assert all(inbox.messages == [("g", b"hello all")] for inbox in inboxes.values())
    assert fallback_calls == [("conn-4", b"hello all")]  # only the one not subscribed


def test_frontend_receives_from_several_publishers(make_bus):
    inbox = Inbox()
    frontend = make_bus("conn-1", on_message=inbox)
    backends = [make_bus("back-%d" % i, fallback=lambda f, p: None) for i in range(3)]
    for backend in backends:
        frontend.add_peer(backend.self_id, backend.endpoint)
    for backend in backends:
        wait_until(lambda: "conn-1" in backend.subscribed_frontends(), message="subscription at " + backend.self_id)
        backend.publish_frontend("conn-1", backend.self_id.encode())
    wait_until(lambda: len(inbox.messages) == 3, message="three pushes")
    assert sorted(inbox.messages) == [("f", b"back-0"), ("f", b"back-1"), ("f", b"back-2")]


def test_unsubscribe_on_close_moves_back_to_fallback(make_bus, closing):
    from zpomelo.bus import Bus

    fallback_calls = []
    backend = make_bus("back-1", fallback=lambda f, p: fallback_calls.append((f, p)))
    frontend = Bus("conn-1", "127.0.0.1", 0, lambda kind, payload: None).start()
    frontend.add_peer("back-1", backend.endpoint)
    wait_until(lambda: "conn-1" in backend.subscribed_frontends(), message="the subscription")
    backend.publish_frontend("conn-1", b"via pub")
    assert fallback_calls == []
    frontend.close()
    wait_until(lambda: "conn-1" not in backend.subscribed_frontends(), message="the unsubscription")
    backend.publish_frontend("conn-1", b"via fallback")
    assert fallback_calls == [("conn-1", b"via fallback")]


def test_remove_peer_unsubscribes_at_that_publisher(make_bus):
    backend = make_bus("back-1", fallback=lambda f, p: None)
    frontend = make_bus("conn-1")
    frontend.add_peer("back-1", backend.endpoint)
    wait_until(lambda: "conn-1" in backend.subscribed_frontends(), message="the subscription")
    frontend.remove_peer("back-1")
    wait_until(lambda: not backend.subscribed_frontends(), message="the unsubscription")
    frontend.remove_peer("back-1")  # twice: harmless


def test_on_message_exception_does_not_stop_the_reader(make_bus):
    received = []

    def on_message(kind, payload):
        received.append(payload)
        if payload == b"boom":
            raise RuntimeError("handler bug")

    backend = make_bus("back-1", fallback=lambda f, p: None)
    frontend = make_bus("conn-1", on_message=on_message)
    frontend.add_peer("back-1", backend.endpoint)
    wait_until(lambda: "conn-1" in backend.subscribed_frontends(), message="the subscription")
    backend.publish_frontend("conn-1", b"boom")
    backend.publish_frontend("conn-1", b"still alive")
    wait_until(lambda: len(received) == 2, message="both pushes")
    assert received == [b"boom", b"still alive"]


def test_publish_from_many_greenlets(make_bus):
    inbox = Inbox()
    backend = make_bus("back-1", fallback=lambda f, p: None)
    frontend = make_bus("conn-1", on_message=inbox)
    frontend.add_peer("back-1", backend.endpoint)
    wait_until(lambda: "conn-1" in backend.subscribed_frontends(), message="the subscription")

    def publisher(index):
        for n in range(50):
            backend.publish_frontend("conn-1", b"%d:%d" % (index, n))
            gevent.sleep(0)

    gevent.joinall([gevent.spawn(publisher, i) for i in range(20)], raise_error=True)
    wait_until(lambda: len(inbox.messages) == 1000, message="all pushes")
    for index in range(20):  # per publisher greenlet order is kept
        mine = [p for _k, p in inbox.messages if p.startswith(b"%d:" % index)]
        assert mine == [b"%d:%d" % (index, n) for n in range(50)]


def test_a_mark_releases_its_waiter_right_after_the_messages_it_covers(make_bus):
    """The ordering point behind "a push before the answer": the waiter runs after on_message
    handled every message published before the mark, never before."""
    backend = make_bus("back-1", fallback=lambda f, p: None)
    events = []
    frontend = make_bus("conn-1", on_message=lambda kind, payload: events.append(payload))
    frontend.add_peer("back-1", backend.endpoint)
    wait_until(lambda: "conn-1" in backend.subscribed_frontends(), message="the subscription")
    assert backend.mark("conn-1") is None            # nothing published: nothing to wait for
    for n in range(50):
        backend.publish_frontend("conn-1", b"p%d" % n)
    backend.publish_global(b"g")
    mark = backend.mark("conn-1")
    assert mark[1:] == [50, 1]
    assert not frontend.delivered(mark)              # the reader has not run yet
    frontend.when_delivered(mark, lambda: events.append("answer"))
    wait_until(lambda: "answer" in events, timeout=5, message="the waiter")
    assert events == [b"p%d" % n for n in range(50)] + [b"g", "answer"]
    assert frontend.stats["mark_waits"] == 1 and frontend.stats["mark_timeouts"] == 0
    assert frontend.delivered(mark)
    done = []
    frontend.when_delivered(mark, lambda: done.append(1))   # already delivered: at once
    assert done == [1]


def test_a_mark_whose_message_was_lost_releases_after_the_wait(make_bus):
    from zpomelo import bus as bus_module

    backend = make_bus("back-1", fallback=lambda f, p: None)
    frontend = make_bus("conn-1")
    released = []
    lost = [backend.source, 7, 0]                    # seq 7 of a source that never sent it
    frontend.when_delivered(lost, lambda: released.append(1))
    gevent.sleep(0)
    assert released == []
    wait_until(lambda: released == [1], timeout=bus_module.MARK_WAIT + 3, message="the timeout")
    assert frontend.stats["mark_timeouts"] == 1


def test_many_waiting_answers_share_one_sweeper_and_only_the_lost_ones_time_out(make_bus):
    """Answers released by their pushes never time out later; the ones whose pushes were lost
    are released after MARK_WAIT, in the order they waited, by one sweeper greenlet for all."""
    import time

    from zpomelo import bus as bus_module

    backend = make_bus("back-1", fallback=lambda f, p: None)
    frontend = make_bus("conn-1", on_message=lambda kind, payload: None)
    frontend.add_peer("back-1", backend.endpoint)
    wait_until(lambda: "conn-1" in backend.subscribed_frontends(), message="the subscription")
    released = []
    started = time.monotonic()
    for n in range(100):
        backend.publish_frontend("conn-1", b"p%d" % n)
        frontend.when_delivered(backend.mark("conn-1"), lambda n=n: released.append(n))
    for n in range(3):                               # seq 7 of sources that never send it
        frontend.when_delivered([b"gone-%d" % n, 7, 0], lambda n=n: released.append("lost-%d" % n))
    sweeper = frontend._mark_sweeper
    assert sweeper is not None and frontend.stats["mark_waits"] == 103
    wait_until(lambda: len(released) == 100, timeout=5, message="the delivered answers")
    assert released == list(range(100))
    assert frontend.stats["mark_timeouts"] == 0
    wait_until(lambda: len(released) == 103, timeout=bus_module.MARK_WAIT + 3, message="the lost ones")
    assert time.monotonic() - started >= bus_module.MARK_WAIT
    assert released[100:] == ["lost-0", "lost-1", "lost-2"]
    assert frontend.stats["mark_timeouts"] == 3
    wait_until(lambda: sweeper.dead, timeout=5, message="the sweeper to end with nothing waiting")
    assert frontend._mark_sweeper is None


def test_a_resubscribed_frontend_does_not_wait_for_what_it_never_got(make_bus):
    """A frontend that (re)subscribes starts from the publisher's current count."""
    from zpomelo.bus import Bus

    backend = make_bus("back-1", fallback=lambda f, p: None)
    first = Bus("conn-1", "127.0.0.1", 0, lambda kind, payload: None).start()
    first.add_peer("back-1", backend.endpoint)
    wait_until(lambda: "conn-1" in backend.subscribed_frontends(), message="the subscription")
    backend.publish_frontend("conn-1", b"to the first")
    first.close()
    wait_until(lambda: "conn-1" not in backend.subscribed_frontends(), message="the unsubscription")
    second = make_bus("conn-1")
    second.add_peer("back-1", backend.endpoint)
    wait_until(lambda: "conn-1" in backend.subscribed_frontends(), message="the resubscription")
    assert backend.mark("conn-1") is None
    assert second.delivered(backend.mark("conn-1"))


def test_messages_queued_together_reach_a_client_writer_in_one_send_each_batch(make_bus):
    """The pushes a frontend reads in one go are written with client writes held: a client
    gets them as one send per batch (not one per push), in order, and a batch never holds more
    than YIELD_EVERY messages (the reader still lets other greenlets run)."""
    from gevent import socket

    from zpomelo.bus import YIELD_EVERY
    from zpomelo.socket_writer import SocketWriter

    near, far = socket.socketpair()
    batches = []

    def frame_batch(parts):
        batches.append(len(parts))
        return b"".join(parts)

    writer = SocketWriter(near, lambda reason: None, lambda: None, frame_batch=frame_batch)
    backend = make_bus("back-1", fallback=lambda f, p: None)
    frontend = make_bus("conn-1", on_message=lambda kind, payload: writer.write(payload))
    frontend.add_peer("back-1", backend.endpoint)
    wait_until(lambda: backend.subscribed_frontends() == {"conn-1"}, message="the subscription")
    expected = b"".join(b"<push %03d>" % index for index in range(300))
    for index in range(300):            # no yield in between: they queue in the SUB together
        backend.publish_frontend("conn-1", b"<push %03d>" % index)
    received = b""
    with gevent.Timeout(10):
        while len(received) < len(expected):
            received += far.recv(65536)
    assert received == expected
    assert batches and max(batches) <= YIELD_EVERY
    assert sum(batches) >= 150, batches  # most pushes left in batches, not one send each
    near.close()
    far.close()


def test_an_answer_released_while_the_sweeper_is_busy_is_released_once(make_bus, monkeypatch):
    """The sweeper releases a lost answer whose callback blocks (a close runs the app's
    callbacks); meanwhile the reader delivers the pushes of the next waiting answer, which was
    past its deadline too. That answer is released once, by the reader, not again by the
    sweeper when it resumes."""
    from gevent.event import Event

    from zpomelo import bus_ordering

    monkeypatch.setattr(bus_ordering, "MARK_WAIT", 0.05)
    frontend = make_bus("conn-1", on_message=lambda kind, payload: None)
    blocking, unblock, released = Event(), Event(), []

    def first():
        released.append("first")
        blocking.set()
        unblock.wait(5)

    frontend.when_delivered([b"src", 5, 0], first)
    frontend.when_delivered([b"src", 6, 0], lambda: released.append("second"))
    assert blocking.wait(5)                  # the sweeper is inside the first callback ...
    frontend._note_delivered(b"src", 0, 6)   # ... when the reader delivers up to seq 6
    assert released == ["first", "second"]
    unblock.set()
    sweeper = frontend._mark_sweeper
    wait_until(lambda: sweeper is None or sweeper.dead, timeout=5, message="the sweeper to end")
    assert released == ["first", "second"]
