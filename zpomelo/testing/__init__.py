"""Helpers for testing game code and zpomelo itself against real sockets on 127.0.0.1.

Two tiers, as in nameko's testing tools:
- a handler or remote called as a plain function with ``FakeApp`` and ``FakeSession`` (no sockets;
  pushes, RPC calls and session changes are recorded, RPC answers come from a table the test sets);
- a whole cluster in the test process with ``InProcessCluster`` and real clients, or real server
  processes with ``ProcessCluster``.
The pytest plugin (``zpomelo.testing.plugin``, registered by installing zpomelo) gives both as
fixtures. ``wait_until`` polls a condition with a deadline instead of sleeping; ``rounds`` bounds a
test's load loop (a stop signal, a deadline, a count).
"""
from zpomelo.testing.cluster import InProcessCluster
from zpomelo.testing.fake_app import FakeApp, Push, RpcCall, UnexpectedCall
from zpomelo.testing.fake_session import FakeSession
from zpomelo.testing.process_cluster import ProcessCluster
from zpomelo.testing.waiting import rounds, wait_until

__all__ = ["FakeApp", "FakeSession", "InProcessCluster", "ProcessCluster", "Push", "RpcCall",
           "UnexpectedCall", "rounds", "wait_until"]
