"""The load tool's pre-encoded requests and its answer scanner (zpomelo.bench.wire), byte for byte
against the protocol codecs the servers use."""
import pytest

from zpomelo.bench import wire
from zpomelo.bench.modes import error_answer
from zpomelo.protocol import message, package, websocket


def server_frames(*packages, ws=True):
    """What a server writes: each package in its own unmasked binary frame (or bare over TCP)."""
    return b"".join(websocket.encode_frame(p) if ws else p for p in packages)


def response(msg_id, body):
    return package.encode_data(message.encode_response(msg_id, body))


def push(route, body):
    return package.encode_data(message.encode_push(route, body))


@pytest.mark.parametrize("ws", [True, False])
def test_scan_finds_every_package_and_leaves_a_partial_one(ws):
    big = b'{"x":"' + b"y" * 70000 + b'"}'           # 8-byte WebSocket length
    mid = b'{"x":"' + b"y" * 300 + b'"}'             # 2-byte WebSocket length
    data = server_frames(response(3, b'{"a":1}'), push("onChat", mid), package.HEARTBEAT_PACKAGE,
                         response(127, big), push(7, b"{}"), ws=ws)
    whole, used, _ = wire.scan(data, ws)
    assert used == len(data)
    assert [kind for kind, _, _ in whole] == [wire.RESPONSE, wire.PUSH, wire.HEARTBEAT, wire.RESPONSE,
                                             wire.PUSH]
    assert [data[start + 5] for kind, start, _ in whole if kind == wire.RESPONSE] == [3, 127]
    kind, start, end = whole[1]
    assert data[wire.data_offset(data, start):end] == mid
    for cut in range(1, len(data), 997):              # any chunking: fed again, nothing lost
        first, used, _ = wire.scan(data[:cut], ws)
        rest, used2, _ = wire.scan(data[used:], ws)
        assert len(first) + len(rest) == 5 and used + used2 == len(data)


def test_scan_reports_a_close_frame_and_a_kick():
    data = websocket.encode_close() + websocket.encode_frame(package.encode(package.KICK, b'{"reason":"x"}'))
    kinds = [kind for kind, _, _ in wire.scan(data, True)[0]]
    assert kinds == [wire.CLOSE, wire.KICK]


def test_request_frames_are_the_requests_of_each_slot_masked():
    framer = wire.Framer("ws")
    frames = wire.request_frames(framer, "chat.chatHandler.echo", {"hello": "world"}, 4,
                                 {"chat.chatHandler.echo": 9})
    assert len(frames) == 4 and len(set(frames)) == 4
    for slot, frame in enumerate(frames):
        decoder = websocket.FrameDecoder(require_mask=True)
        (opcode, payload), = decoder.feed(frame)
        (ptype, body), = package.PackageDecoder().feed(payload)
        msg = message.decode(body)
        assert (ptype, msg.type, msg.id, msg.route, msg.body) == \
            (package.DATA, message.REQUEST, slot + 1, 9, b'{"hello":"world"}')
    tcp = wire.request_frames(wire.Framer("tcp"), "a.b.c", {}, 1)[0]
    assert tcp == package.encode_data(message.encode_request(1, "a.b.c", b"{}"))
    with pytest.raises(ValueError):
        wire.request_frames(framer, "a.b.c", {}, 128)


def test_error_answers_are_told_from_good_ones():
    for body, bad in ((b'{"hello":"world"}', False), (b'{"code":200}', False),
                      (b'{"code":500,"error":"no"}', True), (b'{"code":404}', True)):
        data = response(1, body)
        assert error_answer(data, 0, len(data)) is bad


def test_scan_reads_a_reused_buffer_up_to_n_only():
    data = server_frames(response(1, b'{"a":1}'), response(2, b'{"b":2}'))
    buf = bytearray(4096)
    buf[:len(data)] = data
    buf[len(data):len(data) + 2] = b"\x82\x7f"        # stale bytes past n must not be read
    found, used, _ = wire.scan(buf, True, len(data))
    assert [buf[start + 5] for _, start, _ in found] == [1, 2] and used == len(data)
    partial, used, _ = wire.scan(buf, True, len(data) - 1)
    assert len(partial) == 1 and used < len(data) - 1


@pytest.mark.parametrize("ws", [True, False])
def test_counted_pushes_are_not_listed_and_any_chunking_counts_each_once(ws):
    two_in_one = websocket.encode_frame(push("onChat", b'{"a":1}') + push("onChat", b'{"b":2}'))
    data = server_frames(push("onChat", b'{"content":1}'), response(5, b'{"code":200}'),
                         push(7, b"{}"), package.HEARTBEAT_PACKAGE, ws=ws)
    data += two_in_one if ws else push("onChat", b'{"a":1}') + push("onChat", b'{"b":2}')
    listed, used, pushes = wire.scan(data, ws, count_pushes=True)
    assert used == len(data) and pushes == 4
    assert [kind for kind, _, _ in listed] == [wire.RESPONSE, wire.HEARTBEAT]
    assert wire.scan(data, ws)[2] == 0            # not counting: every push is listed
    for cut in range(1, len(data)):
        first, used, counted = wire.scan(data[:cut], ws, count_pushes=True)
        rest, used2, counted2 = wire.scan(data[used:], ws, count_pushes=True)
        assert (counted + counted2, len(first) + len(rest), used + used2) == (4, 2, len(data))


def test_a_broadcast_sender_counting_in_bulk_sends_one_message_per_own_push_back():
    from types import SimpleNamespace

    from zpomelo.bench.modes import BroadcastLoad, Phase, WorkerStats
    phase, stats = Phase(), WorkerStats()
    load = BroadcastLoad({"route": "chat.chatHandler.send", "body": {}, "inflight": 1, "timeout": 5,
                          "uid_prefix": "u", "rid": "r", "senders": 3}, phase, stats)
    load.attach(SimpleNamespace(framer=wire.Framer("ws"), sys={}, send=lambda conn, data: None))
    sender = SimpleNamespace(index=1, tag=None, count_pushes=None, t0=None)
    load.ready(sender)
    assert sender.count_pushes and sender.tag == b'"from":"u-1"'
    mine, other = b'{"content":1,"from":"u-1"}', b'{"content":1,"from":"u-10"}'
    data = server_frames(push("onChat", mine), push("onChat", other), push("onChat", mine))
    _, used, pushes = wire.scan(data, True, count_pushes=True)
    load.pushes_counted(sender, pushes, data, used)       # not running yet: counted nowhere
    assert (stats.pushes, load.pending) == (0, [])
    phase.running = phase.measuring = True
    load.pushes_counted(sender, pushes, data, used)
    assert stats.pushes == 3 and len(load.pending) == 2     # its own two came back, not u-10's
