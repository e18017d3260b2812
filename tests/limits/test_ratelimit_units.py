"""connector/ratelimit.py on its own: buckets, refusal kinds, the kick count, config errors."""
import pytest

from zpomelo.connector.config import ConnectorConfig
from zpomelo.connector.ratelimit import BYTES, REQUESTS, TOO_BIG, RateLimits
from zpomelo.errors import ConfigError

pytestmark = pytest.mark.timeout(10)


def test_a_burst_passes_then_the_rate_refills_it():
    limiter = RateLimits(requests=10, requests_burst=5).limiter(now=100.0)
    assert [limiter.admit(10, 100.0) for _ in range(6)] == [None] * 5 + [REQUESTS]
    assert limiter.admit(10, 100.05) == REQUESTS       # half a token back: not enough
    assert limiter.admit(10, 100.11) is None           # one token back
    assert limiter.admit(10, 100.11) == REQUESTS
    assert [limiter.admit(1, 200.0) for _ in range(6)] == [None] * 5 + [REQUESTS]  # capped at the burst


def test_bytes_are_counted_and_a_message_over_the_burst_never_passes():
    limiter = RateLimits(bytes_per_second=1000).limiter(now=0.0)
    assert limiter.admit(600, 0.0) is None
    assert limiter.admit(600, 0.0) == BYTES              # 400 left
    assert limiter.admit(600, 0.2) is None               # 400 + 200
    assert limiter.admit(1001, 1000.0) == TOO_BIG         # bigger than the bucket, even when full
    assert "1001 bytes" in limiter.explain(TOO_BIG, 1001) and "rateLimitBytesBurst" in limiter.explain(TOO_BIG, 1001)
    assert "1000 bytes/s" in limiter.explain(BYTES, 600)


def test_a_refused_message_takes_no_tokens():
    limiter = RateLimits(requests=1, requests_burst=2, bytes_per_second=100).limiter(now=0.0)
    assert limiter.admit(90, 0.0) is None
    assert limiter.admit(90, 0.0) == BYTES               # a request token is left over
    assert limiter.admit(10, 0.0) is None                # ...and used here


def test_the_kick_comes_after_enough_refusals_within_the_window():
    limiter = RateLimits(requests=1, kick_after=3, kick_window=10).limiter(now=0.0)
    assert [limiter.note_refusal(t) for t in (0.0, 1.0)] == [False, False]
    assert limiter.note_refusal(11.5) is False           # a new window: counting starts over
    assert [limiter.note_refusal(t) for t in (12.0, 13.0)] == [False, True]
    never = RateLimits(requests=1, kick_after=0).limiter(now=0.0)
    assert not any(never.note_refusal(float(t)) for t in range(100))


def test_off_by_default_and_parsed_from_connector_config():
    assert ConnectorConfig.from_pomelo({}).rate_limits.limiter(0.0) is None
    limits = ConnectorConfig.from_pomelo({"rateLimitRequests": "20", "rateLimitBytes": 5000,
                                          "rateLimitKickAfter": 7}).rate_limits
    assert (limits.requests, limits.requests_burst, limits.bytes, limits.bytes_burst,
            limits.kick_after, limits.kick_window) == (20, 20, 5000, 5000, 7, 10.0)


@pytest.mark.parametrize("opts, field", [
    ({"rateLimitRequests": 0}, "rateLimitRequests"),
    ({"rateLimitBytes": -5}, "rateLimitBytes"),
    ({"rateLimitRequests": 5, "rateLimitKickWindow": 0}, "rateLimitKickWindow"),
    ({"rateLimitRequests": 5, "rateLimitKickAfter": -1}, "rateLimitKickAfter"),
    ({"rateLimitRequest": 5}, "rateLimitRequests"),       # misspelled: the close match is named
    ({"rateLimitRequests": "lots"}, "rateLimitRequests"),
])
def test_bad_limits_are_config_errors_naming_the_field(opts, field):
    with pytest.raises(ConfigError, match=field):
        ConnectorConfig.from_pomelo(opts)


def test_an_address_kicked_lately_gets_no_fresh_burst():
    from zpomelo.connector.ratelimit import KickMemory

    memory = KickMemory(window=10, size=2)
    memory.note("10.0.0.1", 100.0)
    assert memory.recent("10.0.0.1", 105.0) and not memory.recent("10.0.0.2", 105.0)
    assert not memory.recent("10.0.0.1", 110.5)             # the window passed: forgotten
    memory.note("a", 1.0)
    memory.note("b", 1.0)
    memory.note("c", 1.0)                                    # bounded: the oldest goes
    assert not memory.recent("a", 2.0) and memory.recent("c", 2.0)
    empty = RateLimits(requests=10, requests_burst=5).limiter(now=0.0, full=False)
    assert empty.admit(1, 0.0) == REQUESTS                   # nothing to spend at once
    assert empty.admit(1, 0.11) is None                      # but served at the rate
