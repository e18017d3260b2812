"""Pushes: the one home of a push from any server to clients held by frontends.

Sending side (any server; channels call it): a push is a *bus message*, a msgpack array
    ["push",  route, msg, uids]            to the given uids on one frontend
    ["bcast", route, msg, bound_only]      to every session (or every bound one) of a frontend
    ["gpush", name, route, msg, exclude]   to a global channel's members, on every frontend
Every push enters through ``send(message, frontend_ids, everywhere=False)``. It packs the message
once, whatever the number of frontends, hands it to our own frontend in place (no bus, no copy),
publishes the same bytes on the bus (``everywhere``: the global topic, one send), and for a
frontend whose bus subscription is not confirmed yet the bus calls ``_fallback``, which sends those
bytes as the arguments of a ``_sys.push`` RPC notify, spliced in as they are (not packed again).

Receiving side (frontends): ``on_bus`` (the bus reader) and ``deliver_here`` (our own pushes and
the RPC fallback, via sysapi) encode the push for clients once per message and write the same bytes
to every target session.

Held pushes: ``send`` first asks the hook of the current greenlet, set with
``with pushes.hold(hook):``. A hook is ``hook(message, frontend_ids, everywhere)``; it takes the
push (and later calls ``deliver`` with the same arguments, or drops it). Without a hook, a push
made inside a store transaction (zpomelo.db) goes to that transaction's outbox: delivered after
its commit, dropped on rollback. Otherwise ``send`` delivers at once. ``deliver`` never consults
either. (The outbox is looked up per push rather than held as a hook around every transaction:
most transactions push nothing, and entering and leaving a hold cost each one 1.2 us.)
"""
import logging

from gevent import getcurrent

from zpomelo.db.transaction import after_commit
from zpomelo.rpc import envelope

logger = logging.getLogger(__name__)

PUSH = "push"
BROADCAST = "bcast"
GLOBAL_PUSH = "gpush"


def pack(message):
    return envelope.packb(message)   # big ints and lone surrogates ride too


class Pushes:
    def __init__(self, app):
        self._app = app
        # greenlet -> its push hook (an outbox) while held. A dict, not gevent.local: a local
        # builds a dict for every new greenlet that touches it, and each request is one
        self._hooks = {}
        self.stats = {"sent": 0, "held": 0, "fallbacks": 0, "lost": 0, "bad_messages": 0}

    # -- sending (any server) ------------------------------------------------------------
    def to_uids(self, frontend_id, route, msg, uids):
        self.send([PUSH, route, msg, list(uids)], (frontend_id,))

    def broadcast(self, frontend_ids, route, msg, bound_only=False):
        self.send([BROADCAST, route, msg, bool(bound_only)], frontend_ids)

    def global_push(self, frontend_ids, name, route, msg, exclude=()):
        self.send([GLOBAL_PUSH, name, route, msg, list(exclude)], frontend_ids, everywhere=True)

    def send(self, message, frontend_ids, everywhere=False):
        """The one entry of every push: the greenlet's hook takes it if one is set, else deliver."""
        hook = self._hooks.get(getcurrent()) if self._hooks else None
        if hook is not None:
            self.stats["held"] += 1
            hook(message, frontend_ids, everywhere)
            return
        after_commit(self.deliver, message, frontend_ids, everywhere)

    def hold(self, hook):
        """Route this greenlet's pushes to ``hook(message, frontend_ids, everywhere)`` meanwhile
        (a context manager; once per transaction, so a class rather than a generator)."""
        return _Hold(self._hooks, hook)

    def deliver(self, message, frontend_ids, everywhere=False):
        """Pack once; our own frontend in place; the others over the bus (or its fallback)."""
        app = self._app
        self.stats["sent"] += 1
        self_id = app.server_id
        others = [f for f in frontend_ids if f != self_id]
        if len(others) != len(frontend_ids):
            self.deliver_here(message)
        if not others:
            return
        payload = pack(message)
        bus = app.bus
        if everywhere:
            bus.publish_global(payload, others)
        else:
            for frontend_id in others:
                bus.publish_frontend(frontend_id, payload)

    def fallback(self, frontend_id, payload):
        """The bus's fallback: the packed message, as a ``_sys.push`` RPC notify."""
        self.stats["fallbacks"] += 1
        try:
            self._app.sys_calls.push_packed(frontend_id, payload)
        except Exception as exc:
            self.stats["lost"] += 1
            logger.warning("%s: push to %s lost: %s", self._app.server_id, frontend_id, exc)

    # -- receiving (frontends) -----------------------------------------------------------
    def on_bus(self, kind, payload):
        """The bus reader's callback: one packed message for our clients."""
        if self._app.frontend is None:
            return
        try:
            message = envelope.unpackb(payload)
        except Exception:
            self.stats["bad_messages"] += 1
            logger.warning("%s: dropped an undecodable bus message", self._app.server_id)
            return
        self.deliver_here(message)

    def deliver_here(self, message):
        """Encode the push for clients once and write it to every target session here."""
        frontend = self._app.frontend
        if frontend is None:
            return
        kind = None
        try:
            kind = message[0]
            codec = frontend.codec
            sessions = frontend.sessions
            if kind == PUSH:
                _, route, msg, uids = message
                sessions.send_to_uids(uids, codec.encode_push(route, msg))
            elif kind == GLOBAL_PUSH:
                _, name, route, msg, exclude = message
                uids = frontend.global_members.members(name)
                if exclude:
                    uids = [u for u in uids if u not in exclude]
                if uids:
                    sessions.send_to_uids(uids, codec.encode_push(route, msg))
            elif kind == BROADCAST:
                _, route, msg, bound_only = message
                sessions.send_to_all(codec.encode_push(route, msg), bound_only)
            else:
                self.stats["bad_messages"] += 1
                logger.warning("%s: unknown push message %r", self._app.server_id, kind)
        except Exception:
            self.stats["bad_messages"] += 1
            logger.exception("%s: push message %r failed", self._app.server_id, kind)


class _Hold:
    __slots__ = ("hooks", "hook", "greenlet", "previous")

    def __init__(self, hooks, hook):
        self.hooks = hooks
        self.hook = hook

    def __enter__(self):
        self.greenlet = getcurrent()
        self.previous = self.hooks.get(self.greenlet)
        self.hooks[self.greenlet] = self.hook
        return self.hook

    def __exit__(self, *exc):
        if self.previous is None:
            self.hooks.pop(self.greenlet, None)
        else:
            self.hooks[self.greenlet] = self.previous
        return False
