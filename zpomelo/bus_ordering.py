"""Ordering points of the push bus: what lets an answer wait for the pushes sent before it.

A base of ``Bus`` (bus.py), which publishes every message with our source key and a sequence
number in its topic, and records what it published and delivered. ``mark(frontend_id)`` is
"everything we published to that frontend so far" (counted from the moment its current
subscription was seen, so a restarted or resubscribed frontend never waits for messages it cannot
get); the receiving bus records the highest sequence it has delivered per source, and
``when_delivered(mark, fn)`` calls ``fn`` once the messages the mark covers have been handed to
``on_message`` (at once when they already were; after ``MARK_WAIT`` seconds at most, counted in
``stats["mark_timeouts"]``, when one was lost). Messages sent through the fallback are not
counted: they are not ordered against the answer (only until the subscription is seen).
"""
import logging
from time import monotonic

import gevent

logger = logging.getLogger("zpomelo.bus")    # the Bus's log, as before the split

MARK_WAIT = 1.0    # seconds an answer waits at most for the pushes its mark covers (lost ones)


class OrderingPoints:
    """Needs the Bus's self_id, source, stats, _subscribed, _sent, _base, _global_sent,
    _delivered, _waiting and _mark_sweeper."""

    def mark(self, frontend_id):
        """[source, frontend seq, global seq]: what we have published to ``frontend_id`` so far
        (0 where nothing since its subscription was seen), or None when there is nothing."""
        base_f, base_g = self._base.get(frontend_id, (0, 0))
        sent_f = self._sent.get(frontend_id, 0)
        sent_g = self._global_sent
        f_seq = sent_f if sent_f > base_f else 0
        g_seq = sent_g if sent_g > base_g else 0
        if not (f_seq or g_seq) or frontend_id not in self._subscribed:
            return None
        return [self.source, f_seq, g_seq]

    def delivered(self, mark):
        """True when the messages ``mark`` covers have been handed to on_message (or no mark)."""
        if not mark:
            return True
        source, f_seq, g_seq = mark
        done = self._delivered.get(source, (0, 0))
        return done[0] >= f_seq and done[1] >= g_seq

    def when_delivered(self, mark, fn):
        """Call ``fn()`` once the messages ``mark`` covers are delivered here: now if they are,
        else from the bus reader right after them, or after MARK_WAIT seconds (a lost message)."""
        if self.delivered(mark):
            fn()
            return
        source, f_seq, g_seq = mark
        self.stats["mark_waits"] += 1
        self._waiting.setdefault(source, []).append([f_seq, g_seq, fn, monotonic() + MARK_WAIT])
        if self._mark_sweeper is None:
            # a greenlet, not a loop callback: fn writes to a client, and a close it causes runs
            # the app's on_closed callbacks, which may block. One for all waiting answers (a
            # timer greenlet per answer cost 10-25 µs, and nearly every chat answer waits)
            self._mark_sweeper = gevent.spawn(self._sweep_marks)

    def _sweep_marks(self):
        """Release the answers whose MARK_WAIT passed (their pushes were lost); ends when no
        answer waits. Entries of one source are in deadline order (appended as they came)."""
        try:
            while True:
                heads = [entries[0][3] for entries in self._waiting.values() if entries]
                if not heads:
                    return
                now = monotonic()
                earliest = min(heads)
                if earliest > now:
                    gevent.sleep(earliest - now)
                    continue
                for entries in list(self._waiting.values()):
                    while entries and entries[0][3] <= now:
                        entry = entries.pop(0)
                        self.stats["mark_timeouts"] += 1
                        logger.warning("bus %s: an answer waited %.1fs for pushes that never came "
                                       "(lost)", self.self_id, MARK_WAIT)
                        self._release(entry)
        finally:
            if self._mark_sweeper is gevent.getcurrent():
                self._mark_sweeper = None

    def _note_delivered(self, source, index, seq):
        done = self._delivered.get(source)
        if done is None:
            done = self._delivered[source] = [0, 0]
        if seq > done[index]:
            done[index] = seq
        waiting = self._waiting.get(source)
        if waiting:
            ready = []
            keep = []
            for entry in waiting:
                (ready if done[0] >= entry[0] and done[1] >= entry[1] else keep).append(entry)
            if ready:
                # in place: the sweeper may be inside a release, holding this very list, and
                # must not find (and release again) what is released here
                waiting[:] = keep
                for entry in ready:
                    self._release(entry)

    @staticmethod
    def _release(entry):
        try:
            entry[2]()
        except Exception:
            logger.exception("a callback waiting for pushes failed")
