"""Session resume with real processes and real clients: a frontend process (tests/apps/resume),
a TCP proxy in the test that cuts or freezes the link, zpomelo's Python client with resume on.

Every scenario floods the room with 1,000 numbered pushes from a second client while the first
is cut off, and checks the first gets each exactly once, in order, without a new login."""
import gevent
import pytest

from zpomelo.client import Client
from zpomelo.testing import wait_until

from .conftest import WINDOW

pytestmark = pytest.mark.timeout(90)
PUSHES = 1000
ROOM = "connector.roomHandler."


def resuming_client(proxy, uid, transport="tcp", **options):
    client = Client.connect("127.0.0.1", proxy.port, transport=transport, resume=True, **options)
    seen = []
    client.on("onRoom", lambda body: seen.append(body["n"]))
    login = client.request(ROOM + "login", {"uid": uid, "color": "red"})
    assert login["code"] == 200
    return client, seen, login["sid"]


def other_client(frontend, uid):
    client = Client.connect("127.0.0.1", frontend[1])
    assert client.request(ROOM + "login", {"uid": uid})["code"] == 200
    return client


def events_of(client, sid):
    return [e for e in client.request(ROOM + "events")["events"] if e[1] == sid]


def flood_async(client, count=PUSHES, start=0, pause=0.005, answers=None):
    """Ask for a flood; its (error, body) answer is appended to ``answers`` (returned)."""
    answers = [] if answers is None else answers
    client.request_async(ROOM + "flood", {"count": count, "start": start, "pause": pause},
                         lambda err, body: answers.append((err, body)), timeout=60)
    return answers


def cut_when(seen, at, action):
    """Run ``action`` once the client has read ``at`` pushes (from a greenlet, not the reader)."""
    def watch():
        wait_until(lambda: len(seen) >= at, 30, interval=0.001, message="%d pushes" % at)
        action()
    return gevent.spawn(watch)


def assert_resumed(client, seen, sid, room_sender, answers, count=PUSHES, floods=1):
    wait_until(lambda: len(answers) == floods, 60, message="the flood to finish")
    assert [err for err, _ in answers] == [None] * floods, answers
    assert sum(body["sent"] for _, body in answers) == count
    wait_until(lambda: len(seen) >= count, 30, message="every push after the resume")
    assert seen == list(range(count)), "pushes lost, repeated or out of order"
    # Back on a new connection. Not wait_connected(): that is true at once while the client has
    # not noticed the cut yet (a loaded machine can cut after it read the last push), and the
    # next request would go out on the dead connection.
    wait_until(lambda: client.reconnects >= 1 and client.is_open, 15, message="the reconnect")
    me = client.request(ROOM + "whoami")          # no new login: the session came back
    assert me == {"uid": me["uid"], "sid": sid, "color": "red", "inRoom": True}
    kinds = [e[0] for e in events_of(room_sender, sid)]
    assert kinds[:2] == ["drop", "resume"] and "closed" not in kinds


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_socket_closed_mid_flood_resumes_with_every_push_once_in_order(frontend, proxy, transport):
    """The link is cut once the client has read 200 pushes of a first flood of 500; the other
    500 are sent after the cut, so the cut lands mid-flood however slow the machine is (with one
    flood, a loaded machine could cut after the last push was read)."""
    alice, seen, sid = resuming_client(proxy, "alice-" + transport, transport)
    resumed = []
    alice.on_resumed(resumed.append)
    bob = other_client(frontend, "bob")
    half = PUSHES // 2
    try:
        cutter = cut_when(seen, 200, proxy.cut)
        answers = flood_async(bob, half)
        cutter.get(timeout=30)
        wait_until(lambda: answers, 60, message="the first flood")    # one flood at a time
        flood_async(bob, PUSHES - half, start=half, answers=answers)
        assert_resumed(alice, seen, sid, bob, answers, floods=2)
        assert alice.reconnects == 1 and resumed == [None]
        stats = bob.request(ROOM + "stats")["resume"]
        assert stats["resumed"] >= 1
        print("replayed after the cut:", stats["replayed"])
        # requests and pushes keep working on the resumed session
        assert bob.request(ROOM + "flood", {"count": 3, "start": PUSHES})["code"] == 200
        wait_until(lambda: len(seen) == PUSHES + 3, 10, message="pushes after the resume")
        assert seen[PUSHES:] == [PUSHES, PUSHES + 1, PUSHES + 2]
    finally:
        alice.close()
        bob.close()


@pytest.mark.parametrize("client_timeout", [0.6, 2.0], ids=["client-notices-first", "server-notices-first"])
def test_stalled_link_is_detected_by_heartbeats_and_resumed(frontend, proxy, client_timeout):
    """The proxy stops moving bytes, sockets open. Heartbeats (0.5 s; the server gives up after
    1 s of silence) find it: with 0.6 s the client gives up first and takes its session over
    from a connection the server still thinks alive; with 2 s the server has dropped it first."""
    alice = Client.connect("127.0.0.1", proxy.port, resume=True, heartbeat_timeout=client_timeout)
    seen = []
    alice.on("onRoom", lambda body: seen.append(body["n"]))
    sid = alice.request(ROOM + "login", {"uid": "alice-stall", "color": "red"})["sid"]
    bob = other_client(frontend, "bob-stall")
    try:
        freezer = cut_when(seen, 200, proxy.freeze)
        answers = flood_async(bob)
        freezer.get(timeout=30)
        assert_resumed(alice, seen, sid, bob, answers)
        # the freeze costs one reconnect; a 0.6 s client timeout against 0.5 s heartbeats may
        # give up once more on a loaded machine, and must then resume again just the same
        assert alice.reconnects >= 1
        assert alice.close_reason.startswith("heartbeat timeout")
    finally:
        alice.close()
        bob.close()


def test_after_the_window_the_client_gets_a_fresh_session_and_the_app_saw_the_close(frontend, proxy):
    alice, seen, sid = resuming_client(proxy, "alice-late")
    lost = []
    alice.on_session_lost(lost.append)
    old_token = alice.resume.token
    bob = other_client(frontend, "bob-late")
    try:
        proxy.refusing = True           # the client cannot come back until the window is over
        proxy.cut()
        wait_until(lambda: [e for e in events_of(bob, sid) if e[0] == "closed"], WINDOW + 10,
                   message="the window to expire")
        events = events_of(bob, sid)
        assert [e[0] for e in events] == ["drop", "closed"]
        assert events[1][3] == "resume window expired"
        proxy.refusing = False
        assert alice.wait_connected(15)
        wait_until(lambda: lost, 5, message="on_session_lost")
        assert "no session to resume" in lost[0]
        me = alice.request(ROOM + "whoami")
        assert me["uid"] is None and me["sid"] != sid and not me["inRoom"]
        assert alice.resume.token != old_token
    finally:
        alice.close()
        bob.close()


def test_forged_used_and_foreign_tokens_are_refused_without_touching_the_session(frontend, proxy):
    alice, seen, sid = resuming_client(proxy, "alice-victim")
    bob = other_client(frontend, "bob-forger")
    token = alice.resume.token
    prefix, fid, tsid, nonce, mac = token.split(".")
    forged = [
        ".".join([prefix, fid, tsid, nonce, "0" * len(mac)]),                # wrong signature
        ".".join([prefix, fid, str(int(tsid) + 1), nonce, mac]),             # another session
        ".".join([prefix, fid, tsid, "00" * 8, mac]),                        # guessed nonce
        "not a token", "r1." * 200,
    ]
    try:
        for fake in forged:
            mallory = Client("127.0.0.1", frontend[1], resume=True)
            mallory.resume.token, mallory.resume.pushes = fake, 0
            lost = []
            mallory.on_session_lost(lost.append)
            mallory.open()
            try:
                reply = mallory.handshake_sys["resume"]
                assert reply["resumed"] is False and reply["reason"], fake
                assert lost, fake
                assert mallory.request(ROOM + "whoami")["uid"] is None
            finally:
                mallory.close()
        # a token the client claims more pushes for than were sent is refused too
        greedy = Client("127.0.0.1", frontend[1], resume=True)
        greedy.resume.token, greedy.resume.pushes = token, 10 ** 6
        greedy.open()
        assert greedy.handshake_sys["resume"]["resumed"] is False
        greedy.close()
        # the victim never noticed
        assert alice.request(ROOM + "whoami")["uid"] == "alice-victim"
        assert events_of(bob, sid) == []
        # a used token is dead: after a resume the old one no longer works
        proxy.cut()
        wait_until(lambda: alice.reconnects == 1 and alice.is_open, 15, message="the resume")
        replay = Client("127.0.0.1", frontend[1], resume=True)
        replay.resume.token, replay.resume.pushes = token, 0
        replay.open()
        assert replay.handshake_sys["resume"]["resumed"] is False
        assert "no session to resume" in replay.handshake_sys["resume"]["reason"]
        replay.close()
        assert alice.request(ROOM + "whoami")["uid"] == "alice-victim"
    finally:
        alice.close()
        bob.close()


def test_clients_that_do_not_ask_for_resume_close_at_once(frontend, proxy):
    plain = Client.connect("127.0.0.1", proxy.port)
    assert plain.request(ROOM + "login", {"uid": "carol"})["code"] == 200
    sid = plain.request(ROOM + "whoami")["sid"]
    assert "resume" not in plain.handshake_sys          # nothing new on a stock handshake
    bob = other_client(frontend, "bob-plain")
    try:
        proxy.cut()
        wait_until(lambda: events_of(bob, sid), 10, message="carol's close")
        assert [e[0] for e in events_of(bob, sid)] == ["closed"]    # no drop, no window
        assert plain.closed.wait(5)
    finally:
        bob.close()


def test_a_resuming_client_that_closes_on_purpose_gets_no_window(frontend, proxy):
    dave, _, sid = resuming_client(proxy, "dave")
    bob = other_client(frontend, "bob-goodbye")
    try:
        dave.close()            # sends the goodbye (a KICK package) before closing
        wait_until(lambda: events_of(bob, sid), 10, message="dave's close")
        events = events_of(bob, sid)
        assert [e[0] for e in events] == ["closed"] and events[0][3] == "client left"
        assert dave.reconnects == 0
    finally:
        bob.close()


def test_a_replay_buffer_overflow_refuses_the_resume_and_closes_the_old_session(tmp_path):
    from .conftest import start_frontend, stop
    from .proxy import TcpProxy
    proc, port = start_frontend(tmp_path, window=10, buffer=300)
    proxy = TcpProxy("127.0.0.1", port)
    try:
        alice, seen, sid = resuming_client(proxy, "alice-overflow")
        lost = []
        alice.on_session_lost(lost.append)
        bob = other_client((proc, port), "bob-overflow")
        proxy.refusing = True
        proxy.cut()
        assert bob.request(ROOM + "flood", {"count": 500, "pause": 0})["code"] == 200
        proxy.refusing = False
        assert alice.wait_connected(15)
        wait_until(lambda: lost, 5, message="the refused resume")
        assert "more than the replay buffer keeps" in lost[0]
        events = events_of(bob, sid)
        assert [e[0] for e in events] == ["drop", "closed"]
        assert events[1][3] == "resume refused: replay buffer overflowed"
        assert alice.request(ROOM + "whoami")["uid"] is None
        alice.close()
        bob.close()
    finally:
        proxy.close()
        stop(proc)


def test_a_stock_handshake_gets_the_same_bytes_as_without_resume(frontend):
    """Byte for byte: a client that does not ask for resume sees nothing of it, and its KICK
    packages are ignored as Pomelo ignores them."""
    import socket
    from zpomelo.protocol import handshake, package
    sock = socket.create_connection(("127.0.0.1", frontend[1]), timeout=5)
    try:
        sock.sendall(handshake.encode_client_request({"type": "js-websocket", "version": "0.0.1"}))
        expected = package.encode(package.HANDSHAKE, b'{"code":200,"sys":{"heartbeat":0.5}}')
        got = b""
        while len(got) < len(expected):
            chunk = sock.recv(4096)
            assert chunk, "closed during the handshake"
            got += chunk
        assert got == expected
        sock.sendall(package.HANDSHAKE_ACK_PACKAGE + package.encode(package.KICK, b"{}")
                     + package.HEARTBEAT_PACKAGE)
        # still open: the heartbeat after the ACK and the answer to ours both come back
        beats = b""
        while len(beats) < 2 * len(package.HEARTBEAT_PACKAGE):
            chunk = sock.recv(4096)
            assert chunk, "a stock client's KICK closed the connection"
            beats += chunk
        assert beats == package.HEARTBEAT_PACKAGE * 2
    finally:
        sock.close()


def test_a_client_that_cannot_come_back_gives_up_and_one_closed_meanwhile_stops(frontend, proxy):
    quitter, _, _ = resuming_client(proxy, "erin", reconnect_for=0.5)
    closing, _, _ = resuming_client(proxy, "frank")
    closed = []
    quitter.on_close(closed.append)
    proxy.refusing = True
    proxy.cut()
    assert quitter.closed.wait(10)
    assert closed and closed[0].startswith("could not reconnect within 0.5 s")
    with pytest.raises(Exception):
        quitter.request(ROOM + "whoami")
    wait_until(lambda: not closing.is_open and closing.reconnects == 0, 5)
    closing.close()                 # while it is reconnecting: stops for good
    assert closing.closed.is_set() and closing.close_reason == "closed by the client"
    wait_until(lambda: closing._reconnector.dead, 5, message="the reconnect loop to stop")
    assert closing.reconnects == 0 and not closing.is_open


def test_kicking_a_dropped_session_ends_it_at_once(frontend, proxy):
    """A kick (a backend's kick by uid, one session per uid) is final, also while the player is
    away: the session closes without waiting for the window, and the client cannot resume it."""
    alice, _, sid = resuming_client(proxy, "alice-kicked")
    lost = []
    alice.on_session_lost(lost.append)
    bob = other_client(frontend, "bob-kicker")
    try:
        proxy.refusing = True
        proxy.cut()
        wait_until(lambda: events_of(bob, sid), 10, message="alice's drop")
        assert bob.request(ROOM + "kick", {"uid": "alice-kicked", "reason": "elsewhere"}) == {"kicked": 1}
        events = events_of(bob, sid)
        assert [e[0] for e in events] == ["drop", "closed"] and events[1][3] == "kicked: elsewhere"
        proxy.refusing = False
        assert alice.wait_connected(15)
        wait_until(lambda: lost, 5, message="the refused resume")
        assert alice.request(ROOM + "whoami")["uid"] is None
    finally:
        alice.close()
        bob.close()


def test_a_kicked_connection_gets_no_window_and_the_client_does_not_come_back(frontend, proxy):
    alice, _, sid = resuming_client(proxy, "alice-kicked-live")
    kicks = []
    alice.on_kick(kicks.append)
    bob = other_client(frontend, "bob-kicker-2")
    try:
        assert bob.request(ROOM + "kick", {"uid": "alice-kicked-live"}) == {"kicked": 1}
        assert alice.closed.wait(10) and kicks == ["bye"]
        wait_until(lambda: events_of(bob, sid), 10, message="alice's close")
        events = events_of(bob, sid)
        assert [e[0] for e in events] == ["closed"] and events[0][3] == "kicked: bye"
        assert alice.reconnects == 0
    finally:
        alice.close()
        bob.close()


def _raw_handshake(port, resume):
    """Handshake with ``sys.resume`` set to ``resume`` over a raw socket: the decoded reply."""
    import socket
    from zpomelo.protocol import handshake, package
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        sock.sendall(handshake.encode_client_request(
            {"type": "js-websocket", "version": "0.0.1", "resume": resume}))
        decoder = package.PackageDecoder(1 << 16)
        for _ in range(100):                   # bounded: a reply is one small package
            chunk = sock.recv(4096)
            assert chunk, "the frontend closed the connection instead of answering %r" % (resume,)
            for kind, body in decoder.feed(chunk):
                assert kind == package.HANDSHAKE
                return handshake.parse_response(body)
        raise AssertionError("no handshake reply")
    finally:
        sock.close()


def test_malformed_resume_requests_get_a_fresh_session_and_touch_nobody(frontend, proxy):
    """sys.resume of the wrong type, a token that is not a string, a push count that is not a
    count: each gets a plain fresh session, the frontend keeps serving, the victim keeps its own."""
    alice, seen, sid = resuming_client(proxy, "alice-target")
    token = alice.resume.token
    bad = ["yes", [1], 5, None, {"token": 7}, {"token": ["r1"]}, {"token": "x" * 5000},
           {"token": token, "pushes": "many"}, {"token": token, "pushes": -1},
           {"token": token, "pushes": 2 ** 70}, {"token": token, "pushes": True},
           {"token": token, "pushes": 1.5}]
    try:
        for value in bad:
            reply = _raw_handshake(frontend[1], value)
            assert reply["code"] == 200, (value, reply)
            assert reply["sys"].get("resume", {}).get("resumed") is not True, (value, reply)
        me = alice.request(ROOM + "whoami")
        assert me["sid"] == sid and me["uid"] == "alice-target"
        # her token was not used up by the bad attempts: a cut link still resumes her session
        resumed = []
        alice.on_resumed(resumed.append)
        proxy.cut()
        wait_until(lambda: resumed, 15, message="alice resumed after the cut")
        assert alice.request(ROOM + "whoami")["sid"] == sid
    finally:
        alice.close()
