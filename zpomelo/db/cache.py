"""The documents this server holds in memory: key -> (version, bytes), least recently used out.

With routing affinity a server keeps seeing the same entities, so most reads are served here
without a store round trip. An entry may be stale when another server committed the document:
the store's version check at commit catches that, the key is dropped and the transaction rerun.
Only committed bytes ever enter the cache, so a rollback never leaves dirty data in memory.
"""
import collections


class DocumentCache:
    def __init__(self, max_documents=100000):
        self.max_documents = max_documents
        self._entries = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key, version, data):
        if self.max_documents <= 0:
            return
        self._entries[key] = (version, data)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_documents:
            self._entries.popitem(last=False)

    def drop(self, keys):
        for key in keys:
            self._entries.pop(key, None)

    def drop_range(self, low, high):
        """Forget every key in [low, high) (records the store deleted)."""
        self.drop([key for key in self._entries if low <= key < high])

    def clear(self):
        self._entries.clear()

    def __len__(self):
        return len(self._entries)
