"""What the master HA tests drive: chat clients under continuous load, the zpomelo CLI run from
gevent (so the load keeps flowing while a command runs), and a watch on the leader record."""
import json
import time

import gevent
import gevent.event

from master import cli_project
from zpomelo.client import Client
from zpomelo.testing import rounds
from zpomelo.master import ha_config
from zpomelo.master.ha import kazoo_client

from .conftest import ENV


def zpomelo(cwd, *args, **kw):
    """`zpomelo ARGS -e test` (the CompletedProcess), without blocking the gevent hub."""
    return cli_project.zpomelo(cwd, *args, "-e", ENV, **kw)


def ok(cwd, *args, **kw):
    return cli_project.ok(cwd, *args, "-e", ENV, **kw)


def rows(cwd):
    """`zpomelo list --json` as {id: row}."""
    return {row["id"]: row for row in json.loads(ok(cwd, "list", "--json"))}


class LeaderWatch:
    """Every leader record ZooKeeper shows, with the monotonic time it was seen. Watches a test
    leaves open (it failed before closing its own) are closed by the conftest after the test."""

    opened = []

    def __init__(self, base_dir):
        LeaderWatch.opened.append(self)
        self.cfg = ha_config.load(base_dir, ENV)
        self.records = []
        self.changed = gevent.event.Event()
        self._client = kazoo_client(self.cfg)
        self._client.start(timeout=10)
        self._client.DataWatch(self.cfg.leader_path, self._on_data)

    def _on_data(self, data, _stat):
        record = ha_config.decode_leader(data)
        if ha_config.is_serving(record) and (not self.records
                                             or self.records[-1][1]["epoch"] != record["epoch"]):
            self.records.append((time.monotonic(), record))
            self.changed.set()

    @property
    def leader(self):
        return self.records[-1][1] if self.records else None

    def wait_epoch_above(self, epoch, timeout):
        """(seconds waited, record) for the first leader with a newer epoch."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            for seen, record in self.records:
                if record["epoch"] > epoch:
                    return seen, record
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no leader with an epoch above %d within %.1f s (records: %s)"
                                     % (epoch, timeout, [r for _, r in self.records]))
            self.changed.clear()
            self.changed.wait(min(left, 0.2))

    def contenders(self):
        children = self._client.get_children(self.cfg.election_path)
        return sorted(json.loads(self._client.get(self.cfg.election_path + "/" + c)[0])["id"]
                      for c in children)

    def close(self):
        if self in LeaderWatch.opened:
            LeaderWatch.opened.remove(self)
        self._client.stop()
        self._client.close()


class ChatLoad:
    """Clients that enter rooms through the gate and send chat messages without pause; every
    request that fails is kept (what, when) so a test can show none did."""

    def __init__(self, gate_port, clients=6, rooms=3):
        self.gate_port = gate_port
        self.ok = 0
        self.failures = []
        self.pushes = 0
        self._clients = []
        self._stop = gevent.event.Event()
        self._greenlets = []
        for i in range(clients):
            self._clients.append(self._enter("user%d" % i, "room%d" % (i % rooms)))

    def _enter(self, name, rid):
        with Client.connect("127.0.0.1", self.gate_port, timeout=5) as gate:
            entry = gate.request("gate.gateHandler.queryEntry", {"uid": name}, timeout=5)
        assert entry.get("code") == 200, entry
        client = Client.connect(entry["host"], entry["port"], timeout=5)
        reply = client.request("connector.entryHandler.enter", {"username": name, "rid": rid},
                               timeout=5)
        assert name in reply.get("users", []), reply
        client.on("onChat", self._on_push)
        return client, name, rid

    def _on_push(self, _body):
        self.pushes += 1

    def start(self):
        self._greenlets = [gevent.spawn(self._run, *c) for c in self._clients]
        return self

    def _run(self, client, name, rid):
        for n in rounds(self._stop, seconds=180):    # the longest HA test's timeout
            try:
                reply = client.request("chat.chatHandler.send", {
                    "rid": rid, "content": "%s says %d" % (name, n), "from": name,
                    "target": "*"}, timeout=5)
            except Exception as e:  # a closed connection or a timeout: a failed request
                self.failures.append((time.monotonic(), name, repr(e)))
                gevent.sleep(0.1)
                continue
            if reply.get("code") == 200:
                self.ok += 1
            else:
                self.failures.append((time.monotonic(), name, reply))
            gevent.sleep(0.002)     # a busy chat, not a benchmark: leave the CPU to the cluster

    def wait_more(self, count, timeout=20):
        """Wait until `count` more requests have succeeded (the cluster serves now)."""
        target = self.ok + count
        deadline = time.monotonic() + timeout
        while self.ok < target:
            assert time.monotonic() < deadline, "only %d of %d more requests succeeded in %.0f s" \
                % (count - (target - self.ok), count, timeout)
            gevent.sleep(0.05)

    def serve_for(self, seconds):
        """Keep the load running for `seconds`, checking every second that requests succeed."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.wait_more(10, timeout=5)
            gevent.sleep(min(1.0, max(0.0, end - time.monotonic())))

    def stop(self):
        self._stop.set()
        gevent.joinall(self._greenlets, timeout=10)
        for client, _name, _rid in self._clients:
            client.close()
