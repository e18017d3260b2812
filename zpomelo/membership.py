"""Who is in the cluster: server records by id and by type, with change listeners."""
import logging

from zpomelo.config import ServerRecord

logger = logging.getLogger(__name__)


def as_record(record):
    if isinstance(record, ServerRecord):
        return record
    return ServerRecord.from_dict(dict(record))


class Membership:
    """Live servers; ``by_type`` lists stay sorted by id so every server routes alike."""

    def __init__(self, self_id):
        self.self_id = self_id
        self.servers = {}
        self._by_type = {}
        self._listeners = []

    def listen(self, on_add, on_remove):
        self._listeners.append((on_add, on_remove))

    def add(self, record):
        record = as_record(record)
        old = self.servers.get(record.id)
        self.servers[record.id] = record
        self._reindex(record.server_type)
        if old is not None and old.server_type != record.server_type:
            self._reindex(old.server_type)
        if old != record:
            logger.info("%s: server %s (%s) joined at %s:%s", self.self_id, record.id,
                        record.server_type, record.host, record.port)
            for on_add, _ in self._listeners:
                on_add(record, old)
        return record

    def remove(self, server_id):
        record = self.servers.pop(server_id, None)
        if record is None:
            return None
        self._reindex(record.server_type)
        logger.info("%s: server %s (%s) left", self.self_id, server_id, record.server_type)
        for _, on_remove in self._listeners:
            on_remove(record)
        return record

    def replace_all(self, records):
        """Apply a full membership list: add the new or changed, remove the missing."""
        records = [as_record(r) for r in records]
        ids = {r.id for r in records}
        for server_id in [s for s in self.servers if s not in ids and s != self.self_id]:
            self.remove(server_id)
        for record in records:
            self.add(record)

    def _reindex(self, server_type):
        servers = sorted((r for r in self.servers.values() if r.server_type == server_type),
                         key=lambda r: r.id)
        if servers:
            self._by_type[server_type] = servers
        else:
            self._by_type.pop(server_type, None)

    def get(self, server_id):
        return self.servers.get(server_id)

    def by_type(self, server_type):
        return self._by_type.get(server_type, [])

    def frontends(self, server_type=None):
        return [r for r in self.servers.values()
                if r.frontend and (server_type is None or r.server_type == server_type)]
