"""The ordering tests run tests/apps/cluster with the plugin's cluster and connect fixtures."""
import os

import gevent
import pytest

from zpomelo.testing import rounds, wait_until

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps", "cluster")


@pytest.fixture(scope="session")
def zpomelo_project():
    return APP_DIR


def overtakes(client, requests, timeout):
    """Send ``requests`` push_self requests at once (each pushes onSelf to its own session, then
    answers); the request numbers whose answer came before its push (or without it)."""
    events = []
    answered = []
    client.on("onSelf", lambda body: events.append(("push", body["n"])))

    def on_answer(error, body):
        events.append(("answer", body["n"] if error is None else error))
        answered.append(1)

    for n in range(requests):
        client.request_async("chat.chatHandler.push_self", {"n": n}, on_answer)
        if n % 20 == 19:
            gevent.sleep(0)
    wait_until(lambda: len(answered) == requests, timeout=timeout, message="every answer")
    position = {event: i for i, event in enumerate(events)}
    return [n for n in range(requests)
            if ("push", n) not in position or position[("answer", n)] < position[("push", n)]]


class EchoLoad:
    """Clients that keep sending echo requests to load a backend until ``stop()`` (at most
    ``limit`` requests each: a test that never stops them still ends)."""

    def __init__(self, clients, limit=100_000):
        self._stop = False
        self._greenlets = [gevent.spawn(self._load, client, limit) for client in clients]

    def _load(self, client, limit):
        for _ in rounds(lambda: self._stop, seconds=300, limit=limit):
            client.request("chat.chatHandler.echo", {"x": 1})

    def stop(self, timeout=20):
        self._stop = True
        gevent.joinall(self._greenlets, timeout=timeout)
