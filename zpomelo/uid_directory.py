"""The uid -> frontend directory: who owns which uid's entry, and one owner's share (a shard).

No external store: the frontends themselves hold the directory, each the share of uids it owns.
The owner of a uid is chosen by rendezvous hashing over the live frontends' ids: every server
computes the same owner from the same membership, and when a frontend joins or leaves only the
uids that hash to it move (with crc32-modulo almost every uid would move on every change).

A ``DirectoryShard`` is plain data (no sockets, no gevent): ``zpomelo.players`` feeds it the
claims, releases and full syncs that holders send, and asks it on lookups. An entry is a session,
``(frontend id, sid)``; a uid has one entry, or several when one session per uid is switched off.
"""
import zlib

_MASK64 = 0xFFFFFFFFFFFFFFFF


def _mix(h):
    """splitmix64's finalizer: crc32 alone is linear, so scores of similar ids would correlate."""
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    h = (h ^ (h >> 27)) * 0x94D049BB133111EB & _MASK64
    return h ^ (h >> 31)


def _crc(text):
    return zlib.crc32(text.encode("utf-8") if isinstance(text, str) else bytes(text)) & 0xFFFFFFFF


def owner_of(uid, frontend_ids):
    """The frontend that owns ``uid``'s entry: the highest score of (uid, frontend id)."""
    if not frontend_ids:
        return None
    key = _crc(str(uid)) << 32
    best, best_score = None, -1
    for fid in frontend_ids:
        score = _mix(key | _crc(fid))
        if score > best_score or (score == best_score and fid < best):
            best, best_score = fid, score
    return best


def group_by_owner(uids, frontend_ids):
    """{owner id: [uid, ...]} for the given live frontend ids."""
    groups = {}
    for uid in uids:
        groups.setdefault(owner_of(uid, frontend_ids), []).append(uid)
    return groups


class DirectoryShard:
    """The entries one frontend owns: uid -> {(frontend id, sid): None}, with an index by frontend.

    ``synced`` remembers, per holder frontend, the membership view (sorted frontend ids) of its last
    full sync: a lookup that misses asks the holders that have not synced under the owner's current
    view directly (see ``unsynced``), so an owner that just took over a share answers correctly
    before every holder's sync has reached it.
    """

    def __init__(self):
        self.entries = {}       # uid -> {(fid, sid): None}, oldest first
        self.by_frontend = {}   # fid -> {uid: None}
        self.synced = {}        # fid -> tuple of frontend ids (its view at its last sync)
        self.stats = {"claims": 0, "displaced": 0, "releases": 0, "syncs": 0, "lookups": 0}

    def __len__(self):
        return len(self.entries)

    def _add(self, uid, fid, sid):
        self.entries.setdefault(uid, {})[(fid, sid)] = None
        self.by_frontend.setdefault(fid, {})[uid] = None

    def _remove(self, uid, fid, sid):
        sessions = self.entries.get(uid)
        if sessions is None or (fid, sid) not in sessions:
            return False
        del sessions[(fid, sid)]
        if not sessions:
            del self.entries[uid]
        if not any(f == fid for f, _ in sessions):
            held = self.by_frontend.get(fid)
            if held is not None:
                held.pop(uid, None)
                if not held:
                    del self.by_frontend[fid]
        return True

    def claim(self, uid, fid, sid, single=True):
        """Record a session bound to uid; with ``single`` the uid's other sessions are removed and
        returned (the caller kicks them). Runs without yielding: claims are serialized here."""
        self.stats["claims"] += 1
        displaced = []
        if single:
            for other in list(self.entries.get(uid, ())):
                if other != (fid, sid):
                    self._remove(uid, *other)
                    displaced.append(other)
        self._add(uid, fid, sid)
        self.stats["displaced"] += len(displaced)
        return displaced

    def release(self, uid, fid, sid):
        """Forget one session of uid (unbind, close); an entry another session took is kept."""
        self.stats["releases"] += 1
        return self._remove(uid, fid, sid)

    def replace_frontend(self, fid, pairs, view):
        """A holder's full sync: its entries here become exactly ``pairs`` [(uid, sid), ...]."""
        self.stats["syncs"] += 1
        for uid in list(self.by_frontend.get(fid, ())):
            for other in [s for s in self.entries.get(uid, ()) if s[0] == fid]:
                self._remove(uid, *other)
        for uid, sid in pairs:
            self._add(uid, fid, sid)
        self.synced[fid] = tuple(view)

    def drop_frontend(self, fid):
        """A frontend left (or restarted): its sessions are gone."""
        for uid in list(self.by_frontend.get(fid, ())):
            for other in [s for s in self.entries.get(uid, ()) if s[0] == fid]:
                self._remove(uid, *other)
        self.synced.pop(fid, None)

    def keep_owned(self, is_mine):
        """After a membership change: drop the entries of uids another frontend owns now (their
        holders sync them to the new owner)."""
        for uid in [u for u in self.entries if not is_mine(u)]:
            for other in list(self.entries.get(uid, ())):
                self._remove(uid, *other)

    def lookup(self, uids):
        """{uid: [[fid, sid], ...]} for the uids with entries here."""
        self.stats["lookups"] += 1
        found = {}
        entries = self.entries
        for uid in uids:
            sessions = entries.get(uid)
            if sessions:
                found[uid] = [list(s) for s in sessions]
        return found

    def unsynced(self, view):
        """The live frontends (``view``) whose last sync here was under another view."""
        view = tuple(view)
        return [fid for fid in view if self.synced.get(fid) != view]
