"""The pure parts of session resume: tokens and the replay buffer (zpomelo/resume.py)."""
import pytest

from zpomelo.resume import ReplayBuffer, ResumeRefused, ResumeTokens

SECRET = b"0123456789abcdef0123456789abcdef"


def test_a_token_checks_back_to_its_session_and_nonce():
    tokens = ResumeTokens(SECRET, "connector-1")
    token = tokens.issue(7, "00ff00ff00ff00ff")
    assert tokens.check(token) == (7, "00ff00ff00ff00ff")


@pytest.mark.parametrize("bad", [
    None, 7, "", "r1", "r1.a.b.c.d.e", "r2.x.7.n.mac", "r1.\u00e9.7.n.mac", "x" * 600,
])
def test_malformed_tokens_are_refused(bad):
    with pytest.raises(ResumeRefused):
        ResumeTokens(SECRET, "connector-1").check(bad)


def test_tokens_of_another_secret_or_frontend_are_refused():
    token = ResumeTokens(SECRET, "connector-1").issue(7, "aa")
    with pytest.raises(ResumeRefused, match="signature"):
        ResumeTokens(b"another secret, just as long as it", "connector-1").check(token)
    with pytest.raises(ResumeRefused):
        ResumeTokens(SECRET, "connector-2").check(token)
    tampered = token.replace(".7.", ".8.")
    with pytest.raises(ResumeRefused, match="signature"):
        ResumeTokens(SECRET, "connector-1").check(tampered)


def test_without_a_secret_tokens_still_only_check_in_the_same_process():
    a, b = ResumeTokens(None, "c"), ResumeTokens(None, "c")
    token = a.issue(1, "n")
    assert a.check(token) == (1, "n")
    with pytest.raises(ResumeRefused):
        b.check(token)


def test_the_buffer_replays_what_was_missed_and_refuses_what_it_lost():
    buffer = ReplayBuffer(max_pushes=3, max_bytes=1000)
    for n in range(5):
        buffer.append(b"p%d" % n)
    assert buffer.seq == 5 and len(buffer) == 3
    assert buffer.after(5) == []
    assert buffer.after(2) == [b"p2", b"p3", b"p4"]
    with pytest.raises(ResumeRefused, match="more than the replay buffer keeps"):
        buffer.after(1)
    for bad in (6, -1, True, 2.0, "2", None):
        with pytest.raises(ResumeRefused):
            buffer.after(bad)


def test_the_buffer_is_bounded_by_bytes_too():
    buffer = ReplayBuffer(max_pushes=100, max_bytes=10)
    for _ in range(4):
        buffer.append(b"abcd")
    assert len(buffer) == 2 and buffer.after(2) == [b"abcd", b"abcd"]
