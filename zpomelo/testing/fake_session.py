"""A session for calling a handler as a plain function: it records what the handler did to it."""
from zpomelo.session import SessionError, SessionSettings


class FakeSession(SessionSettings):
    """Stands in for the frontend ``Session`` or a backend's ``BackendSession`` in a unit test.

    It keeps the rules the real sessions enforce (no empty uid, no second uid, unbind only the
    bound uid) and records every change in ``log`` as tuples: ``("bind", uid)``,
    ``("unbind", uid)``, ``("set", key, value)``, ``("remove", key)``, ``("push", keys)``,
    ``("kick", reason)``. ``pushed`` holds the settings sent home with ``push``/``push_all`` (what
    the frontend would see), ``kicked`` the kick reason. ``close()`` runs the ``on_closed``
    callbacks as a client disconnect does; ``drop()`` / ``resume()`` run ``on_drop`` /
    ``on_resume`` as a resuming client's lost link and return do (README "Reconnect with session
    resume").
    """

    def __init__(self, uid=None, sid=1, frontend_id="connector-server-1", settings=None,
                 address=("127.0.0.1", 50000)):
        self.id = sid
        self.frontend_id = frontend_id
        self.uid = uid
        self.settings = dict(settings or {})
        self.address = address
        self.log = []
        self.pushed = {}
        self.kicked = None
        self.closed = False
        self.detached = False
        self._on_closed = []
        self._on_drop = []
        self._on_resume = []

    def bind(self, uid):
        if uid is None or uid == "":
            raise SessionError("cannot bind an empty uid")
        if self.uid is not None and self.uid != uid:
            raise SessionError("session %s is already bound to uid %r" % (self.id, self.uid))
        self.uid = uid
        self.log.append(("bind", uid))

    def unbind(self, uid):
        if self.uid != uid:
            raise SessionError("session %s is not bound to uid %r" % (self.id, uid))
        self.uid = None
        self.log.append(("unbind", uid))

    def set(self, key, value=None):
        super().set(key, value)
        changes = key.items() if isinstance(key, dict) else [(key, value)]
        self.log.extend(("set", k, v) for k, v in changes)

    def remove(self, key):
        super().remove(key)
        self.log.append(("remove", key))

    def push(self, *keys):
        self.pushed.update({k: self.settings.get(k) for k in keys})
        self.log.append(("push", keys))

    def push_all(self):
        self.push(*self.settings)

    def kick(self, reason="kick"):
        self.kicked = reason
        self.log.append(("kick", reason))

    def on_closed(self, fn):
        self._on_closed.append(fn)

    def on_drop(self, fn):
        self._on_drop.append(fn)

    def on_resume(self, fn):
        self._on_resume.append(fn)

    def drop(self):
        """What a lost connection of a resuming client does: ``on_drop`` callbacks run."""
        self.detached = True
        for fn in list(self._on_drop):
            fn(self)

    def resume(self):
        """The client came back within the window: ``on_resume`` callbacks run."""
        self.detached = False
        for fn in list(self._on_resume):
            fn(self)

    def close(self, reason="client closed"):
        """What a client disconnect does: each ``on_closed`` callback runs once."""
        if self.closed:
            return
        self.closed = True
        callbacks, self._on_closed = self._on_closed, []
        for fn in callbacks:
            fn(self, reason)

    def snapshot(self):
        return [self.id, self.frontend_id, self.uid, self.settings]

    def __repr__(self):
        return "<FakeSession %s uid=%r on %s>" % (self.id, self.uid, self.frontend_id)
