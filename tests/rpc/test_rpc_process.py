"""RpcClient against an RpcServer in another process: kill -9 mid-load, restart on the same port."""
import time

import gevent
import pytest

from zpomelo.errors import RpcError, ServerGone

from zpomelo.testing import wait_until


@pytest.mark.timeout(60)
def test_calls_across_processes(child_servers, make_client):
    child = child_servers()
    client = make_client("front-x")
    client.add_peer("child", child.endpoint)
    assert client.call("child", "svc", "echo", [1, "two", {"three": 3}]) == [1, "two", {"three": 3}]
    with pytest.raises(RpcError) as info:
        client.call("child", "svc", "fail", ["nope"])
    assert info.value.remote_type == "ValueError" and "nope" in str(info.value)
    results = gevent.joinall([gevent.spawn(client.call, "child", "s", "echo", [i]) for i in range(2000)],
                             timeout=30, raise_error=True)
    assert [g.value for g in results] == [[i] for i in range(2000)]


@pytest.mark.timeout(60)
def test_sigkill_fails_pending_and_new_calls_fast_then_restart_recovers(child_servers, make_client):
    child = child_servers()
    client = make_client("front-y")
    client.add_peer("child", child.endpoint)
    assert client.call("child", "s", "echo", ["warm"]) == ["warm"]

    # Load: slow calls that will be pending when the process dies, plus a stream of fast ones.
    pending_errors = []
    for _ in range(200):
        client.call_async("child", "s", "sleep", [30], 30, lambda error, result: pending_errors.append(error))
    sync_callers = [gevent.spawn(client.call, "child", "s", "sleep", [30], 30) for _ in range(50)]
    wait_until(lambda: client.pending_count() == 250, message="all calls to be pending")
    wait_until(lambda: not client._peers["child"].outgoing, message="the writer to flush them onto the wire")

    killed_at = time.monotonic()
    child.kill()
    gevent.joinall(sync_callers, timeout=5)
    wait_until(lambda: len(pending_errors) == 200, timeout=5, message="async calls to fail")
    elapsed = time.monotonic() - killed_at
    assert elapsed < 2.0, "pending calls took %.2f s to fail" % elapsed
    assert all(isinstance(error, ServerGone) for error in pending_errors)
    assert all(isinstance(g.exception, ServerGone) for g in sync_callers)

    start = time.monotonic()
    with pytest.raises(ServerGone):
        client.call("child", "s", "echo", ["while down"], timeout=10)
    assert time.monotonic() - start < 2.0
    assert client.peer_state("child") == "down"

    restarted = child_servers(port=child.port)
    assert restarted.port == child.port
    wait_until(lambda: client.peer_state("child") == "up", timeout=10, message="the DEALER to reconnect")
    assert client.call("child", "s", "echo", ["back"], timeout=5) == ["back"]
