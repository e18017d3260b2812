"""LoginThrottle: failed admin logins slow down per peer address (a growing lockout window).

The first FREE_FAILURES failures from an address cost nothing; each further failure locks that
address out for BASE_DELAY * 2**(extra failures), at most MAX_DELAY seconds. While locked out a
login is refused without looking at the password, so guessing runs at a few tries a minute. A
success clears the address. Addresses idle for FORGET_AFTER seconds are forgotten (bounded memory).
"""
import time

FREE_FAILURES = 3
BASE_DELAY = 1.0
MAX_DELAY = 60.0
FORGET_AFTER = 600.0
MAX_ADDRESSES = 10_000


class LoginThrottle:
    def __init__(self, free=FREE_FAILURES, base=BASE_DELAY, max_delay=MAX_DELAY,
                 clock=time.monotonic):
        self.free = free
        self.base = base
        self.max_delay = max_delay
        self._clock = clock
        self._peers = {}        # address -> [failures, locked until, last failure]

    def wait_left(self, address):
        """Seconds this address must still wait before its next login (0: go ahead)."""
        entry = self._peers.get(address)
        if entry is None:
            return 0.0
        return max(0.0, entry[1] - self._clock())

    def failed(self, address):
        """Count a failure; returns the lockout it starts (seconds, 0 while still free)."""
        now = self._clock()
        self._forget_idle(now)
        entry = self._peers.setdefault(address, [0, 0.0, now])
        entry[0] += 1
        entry[2] = now
        extra = entry[0] - self.free - 1
        delay = 0.0 if extra < 0 else min(self.max_delay, self.base * 2 ** extra)
        entry[1] = now + delay
        return delay

    def succeeded(self, address):
        self._peers.pop(address, None)

    def _forget_idle(self, now):
        if len(self._peers) < MAX_ADDRESSES:
            return
        for address, entry in list(self._peers.items()):
            if now - entry[2] > FORGET_AFTER or len(self._peers) >= MAX_ADDRESSES:
                del self._peers[address]
