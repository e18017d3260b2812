"""The master's view of who is registered: records, ZeroMQ identities and heartbeats (no sockets)."""
import time
from dataclasses import dataclass, field


@dataclass
class Member:
    record: dict
    identity: bytes
    registered_at: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.monotonic)

    @property
    def server_id(self):
        return self.record["id"]


class Registry:
    def __init__(self):
        self.members = {}       # server id -> Member

    def __contains__(self, server_id):
        return server_id in self.members

    def __len__(self):
        return len(self.members)

    def get(self, server_id):
        return self.members.get(server_id)

    def register(self, record, identity):
        """Add or refresh a member; returns (member, changed) where changed means others must hear."""
        old = self.members.get(record["id"])
        member = Member(dict(record), identity)
        if old is not None and old.identity == identity and old.record == member.record:
            member.registered_at = old.registered_at
            changed = False
        else:
            changed = True
        self.members[member.server_id] = member
        return member, changed

    def touch(self, server_id, identity):
        """A heartbeat; False when the sender is not (or no longer) the registered member."""
        member = self.members.get(server_id)
        if member is None or member.identity != identity:
            return False
        member.last_seen = time.monotonic()
        return True

    def remove(self, server_id):
        return self.members.pop(server_id, None)

    def records(self):
        return [m.record for m in self.members.values()]

    def identities(self, exclude=None):
        return [m.identity for sid, m in self.members.items() if sid != exclude]

    def silent_since(self, timeout):
        """Ids of members whose last heartbeat is older than timeout seconds."""
        limit = time.monotonic() - timeout
        return [sid for sid, m in self.members.items() if m.last_seen < limit]

    def taken_addresses(self):
        """(host, port) -> "server <id> <key>" for every bound port of every member."""
        taken = {}
        for sid, m in self.members.items():
            for key in ("port", "clientPort", "busPort", "metricsPort"):
                port = m.record.get(key)
                if port:
                    taken[(str(m.record.get("host", "")).lower(), port)] = \
                        "server %s %s" % (sid, key)
        return taken
