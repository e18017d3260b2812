"""Package layer: encode, the incremental decoder in any chunking, limits and bad input."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zpomelo.errors import ProtocolError
from zpomelo.protocol import package
from zpomelo.protocol.package import DEFAULT_MAX_BODY, MAX_BODY_LIMIT, PackageDecoder

SMALL_LIMIT = 300
packages_st = st.lists(
    st.tuples(st.integers(1, 5), st.binary(max_size=SMALL_LIMIT)), max_size=12)


def stream_of(packages):
    return b"".join(package.encode(t, b) for t, b in packages)


def feed_in_chunks(data, cuts, max_body=SMALL_LIMIT, wrap=bytes):
    decoder = PackageDecoder(max_body)
    out = []
    points = sorted(set(c for c in cuts if 0 < c < len(data)))
    start = 0
    for end in points + [len(data)]:
        out += decoder.feed(wrap(data[start:end]))
        start = end
    assert decoder.buffered == 0
    return out


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(packages_st, st.lists(st.integers(0, 5000), max_size=40))
def test_any_chunking_gives_the_same_packages(packages, cuts):
    data = stream_of(packages)
    all_at_once = PackageDecoder(SMALL_LIMIT).feed(data)
    assert all_at_once == packages
    assert feed_in_chunks(data, cuts) == packages
    assert feed_in_chunks(data, cuts, wrap=bytearray) == packages
    assert feed_in_chunks(data, cuts, wrap=memoryview) == packages


@settings(max_examples=40)
@given(packages_st)
def test_one_byte_at_a_time(packages):
    data = stream_of(packages)
    assert feed_in_chunks(data, range(len(data))) == packages


def test_feed_always_returns_a_list():
    decoder = PackageDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\x04\x00") == []
    assert decoder.feed(b"\x00\x02h") == []
    assert decoder.feed(b"i\x03\x00\x00\x00\x04") == [(4, b"hi"), (3, b"")]
    assert decoder.buffered == 1
    assert all(type(body) is bytes for _, body in decoder.feed(b"\x00\x00\x01x"))


def test_body_at_the_default_limit_is_accepted_and_one_over_is_rejected():
    body = b"x" * DEFAULT_MAX_BODY
    assert PackageDecoder().feed(package.encode(4, body)) == [(4, body)]
    decoder = PackageDecoder()
    with pytest.raises(ProtocolError, match="exceeds the limit of 65536"):
        decoder.feed(package.encode(4, body + b"x")[:4])     # the header alone is enough


def test_protocol_maximum_body():
    body = b"\x00" * MAX_BODY_LIMIT
    encoded = package.encode(4, body)
    assert encoded[:4] == b"\x04\xff\xff\xff"
    assert PackageDecoder(MAX_BODY_LIMIT).feed(encoded) == [(4, body)]
    with pytest.raises(ProtocolError, match="protocol maximum"):
        package.encode(4, body + b"\x00")
    with pytest.raises(ValueError):
        PackageDecoder(MAX_BODY_LIMIT + 1)


def test_buffer_never_exceeds_header_plus_limit():
    limit = 1000
    decoder = PackageDecoder(limit)
    data = package.encode(4, b"y" * limit) * 3
    for i in range(0, len(data), 7):
        decoder.feed(data[i:i + 7])
        assert decoder.buffered <= 4 + limit
    assert decoder.buffered == 0


@pytest.mark.parametrize("type_byte", [0, 6, 7, 0x7F, 0xFF])
def test_bad_type_byte_raises_at_once(type_byte):
    with pytest.raises(ProtocolError, match="type byte"):
        PackageDecoder().feed(bytes([type_byte]))
    # also after good packages in the same read, and after a partial package
    with pytest.raises(ProtocolError, match="type byte"):
        PackageDecoder().feed(package.HEARTBEAT_PACKAGE + bytes([type_byte]))
    decoder = PackageDecoder()
    decoder.feed(b"\x04\x00\x00\x02a")
    with pytest.raises(ProtocolError, match="type byte"):
        decoder.feed(b"b" + bytes([type_byte]))


def test_length_over_limit_in_a_split_header():
    decoder = PackageDecoder(10)
    assert decoder.feed(b"\x04\x00") == []
    with pytest.raises(ProtocolError, match="DATA package of 11 bytes exceeds the limit of 10"):
        decoder.feed(b"\x00\x0b")


def test_decoder_stays_failed():
    decoder = PackageDecoder()
    with pytest.raises(ProtocolError):
        decoder.feed(b"\x09")
    with pytest.raises(ProtocolError, match="type byte 0x09"):
        decoder.feed(package.HEARTBEAT_PACKAGE)
    assert decoder.buffered == 0


def test_truncated_package_is_held_then_reported_at_the_end():
    decoder = PackageDecoder()
    data = package.encode(4, b"hello")
    for cut in range(1, len(data)):
        fresh = PackageDecoder()
        assert fresh.feed(data[:cut]) == []
        assert fresh.buffered == cut
        with pytest.raises(ProtocolError, match="stream ended inside a package"):
            fresh.finish()
    assert decoder.feed(data) == [(4, b"hello")]
    decoder.finish()                                   # nothing pending: no error
    fresh = PackageDecoder()
    fresh.feed(data[:6])
    with pytest.raises(ProtocolError, match="2 of 5 body bytes"):
        fresh.finish()


@pytest.mark.parametrize("ptype", [0, 6, -1, None])
def test_encode_rejects_bad_type(ptype):
    with pytest.raises(ProtocolError):
        package.encode(ptype, b"")


def test_encode_data():
    assert package.encode_data(b"ab") == b"\x04\x00\x00\x02ab"
    with pytest.raises(ProtocolError):
        package.encode_data(b"\x00" * (MAX_BODY_LIMIT + 1))
