"""Rate limits per client connection: token buckets for messages/s and bytes/s, and the kick.

A flooding client must not cost the others their latency. Each connection of a frontend whose
connectorConfig sets ``rateLimitRequests`` and/or ``rateLimitBytes`` gets a ``ConnectionLimiter``;
the connection asks it about every DATA package (a request or notify) before decoding the body.
A refused request is answered with ``CODE_RATE_LIMITED`` and never handled or forwarded; a refused
notify is dropped. A connection refused ``kick_after`` times within ``kick_window`` seconds is
kicked (Pomelo's kick package, reason "rate limit exceeded") and closed: it keeps flooding.

Token bucket: a bucket holds at most ``burst`` tokens and refills at ``rate`` per second; a
message takes 1 request token and len(message) byte tokens, and is refused (taking none) when
either bucket is short. A message bigger than the byte burst can never pass: it is refused as such.
A client kicked for flooding that reconnects at once would get a full bucket (a fresh burst) on
every new connection: connections from an address kicked within the last ``kick_window`` seconds
start with empty buckets instead (``KickMemory``); they are still served at the rate.

Time comes from the caller (monotonic seconds), which keeps this module free of clocks and sockets.
"""
from zpomelo import settings
from zpomelo.errors import ConfigError

_C = settings.CONNECTOR

REQUESTS = "requests"        # refusal kinds, the keys of RateLimitCounters
BYTES = "bytes"
TOO_BIG = "too big"
KICKED = "kicked"


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate, burst, now, full=True):
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = self.burst if full else 0.0
        self.stamp = now

    def refill(self, now):
        tokens = self.tokens + (now - self.stamp) * self.rate
        self.tokens = tokens if tokens < self.burst else self.burst
        self.stamp = now
        return self.tokens


class RateLimits:
    """The parsed limits of one frontend (None: that bucket is off)."""

    def __init__(self, requests=None, requests_burst=None, bytes_per_second=None, bytes_burst=None,
                 kick_after=settings.default("rateLimitKickAfter", _C),
                 kick_window=settings.default("rateLimitKickWindow", _C)):
        for name, number in (("rateLimitRequests", requests), ("rateLimitRequestsBurst", requests_burst),
                             ("rateLimitBytes", bytes_per_second), ("rateLimitBytesBurst", bytes_burst)):
            if number is not None and not number > 0:
                raise ConfigError("%s must be a positive number (or unset for no limit), got %r"
                                  % (name, number), field=name)
        if kick_after is None or kick_after < 0:
            raise ConfigError("rateLimitKickAfter must be 0 (never kick) or more, got %r"
                              % (kick_after,), field="rateLimitKickAfter")
        if not kick_window > 0:
            raise ConfigError("rateLimitKickWindow must be a positive number of seconds, got %r"
                              % (kick_window,), field="rateLimitKickWindow")
        self.requests = requests
        self.requests_burst = requests_burst or requests
        self.bytes = bytes_per_second
        self.bytes_burst = bytes_burst or bytes_per_second
        self.kick_after = kick_after
        self.kick_window = kick_window

    @property
    def enabled(self):
        return self.requests is not None or self.bytes is not None

    @classmethod
    def from_settings(cls, get):
        """``get(name)``: the connectorConfig value of a declared setting."""
        return cls(get("rateLimitRequests"), get("rateLimitRequestsBurst"), get("rateLimitBytes"),
                   get("rateLimitBytesBurst"), get("rateLimitKickAfter"), get("rateLimitKickWindow"))

    def limiter(self, now, full=True):
        """A connection's limiter (None when no limit is set); ``full=False``: empty buckets."""
        return ConnectionLimiter(self, now, full) if self.enabled else None


class ConnectionLimiter:
    """One connection's buckets and its recent refusals."""

    __slots__ = ("limits", "requests", "bytes", "refused", "window_start")

    def __init__(self, limits, now, full=True):
        self.limits = limits
        self.requests = (TokenBucket(limits.requests, limits.requests_burst, now, full)
                         if limits.requests else None)
        self.bytes = TokenBucket(limits.bytes, limits.bytes_burst, now, full) if limits.bytes else None
        self.refused = 0          # refusals in the current kick window
        self.window_start = now

    def admit(self, size, now):
        """None when a message of ``size`` bytes may pass (its tokens are taken), else the refusal
        kind (REQUESTS, BYTES or TOO_BIG)."""
        requests, nbytes = self.requests, self.bytes
        if nbytes is not None and size > nbytes.burst:
            return TOO_BIG
        if requests is not None and requests.refill(now) < 1.0:
            return REQUESTS
        if nbytes is not None and nbytes.refill(now) < size:
            return BYTES
        if requests is not None:
            requests.tokens -= 1.0
        if nbytes is not None:
            nbytes.tokens -= size
        return None

    def note_refusal(self, now):
        """Count a refusal; True when the connection has earned its kick."""
        limits = self.limits
        if now - self.window_start > limits.kick_window:
            self.window_start = now
            self.refused = 0
        self.refused += 1
        return bool(limits.kick_after) and self.refused >= limits.kick_after

    def explain(self, kind, size):
        """What the client is told about a refusal: what went wrong and what to do."""
        limits = self.limits
        if kind == TOO_BIG:
            return ("message of %d bytes is larger than this connection's byte allowance of %d "
                    "(rateLimitBytesBurst): send smaller messages" % (size, limits.bytes_burst))
        if kind == BYTES:
            return ("rate limit: more than %g bytes/s on this connection; slow down"
                    % limits.bytes)
        return "rate limit: more than %g requests/s on this connection; slow down" % limits.requests


class KickMemory:
    """Addresses kicked for flooding within the last ``window`` seconds (at most ``size``)."""

    def __init__(self, window, size=10000):
        self.window = window
        self.size = size
        self._kicked = {}     # ip -> monotonic time of its last kick, oldest first

    def note(self, ip, now):
        kicked = self._kicked
        kicked.pop(ip, None)
        kicked[ip] = now
        if len(kicked) > self.size:
            del kicked[next(iter(kicked))]

    def recent(self, ip, now):
        when = self._kicked.get(ip)
        if when is None:
            return False
        if now - when > self.window:
            del self._kicked[ip]
            return False
        return True
