"""Stream framing: whole messages out of TCP/TLS bytes, keep-alives, limits (RFC 3261 §18.3, RFC 5626)."""

from __future__ import annotations

import pytest

from b2bua.sip.codec import parse_message
from b2bua.sip.framing import KEEPALIVE, PONG, FramingError, StreamFramer

MSG = (b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
       b"Call-ID: c1\r\nContent-Length: 5\r\n\r\nhello")
MSG2 = b"BYE sip:a@example.com SIP/2.0\r\nCall-ID: c2\r\nl: 0\r\n\r\n"


def test_two_messages_in_one_read_come_out_whole():
    """Content-Length cuts the stream; both messages come out in order, bodies intact."""
    assert StreamFramer().feed(MSG + MSG2) == [MSG, MSG2]


def test_a_message_split_at_every_byte_comes_out_once():
    """Fed one byte at a time, nothing is returned early and each message exactly once."""
    framer = StreamFramer()
    out = []
    for i in range(len(MSG + MSG2)):
        out.extend(framer.feed((MSG + MSG2)[i:i + 1]))
    assert out == [MSG, MSG2]
    assert framer.buffered == 0


def test_double_crlf_is_a_ping_and_a_lone_crlf_is_skipped():
    """RFC 5626 §3.5.1: CRLFCRLF between messages is a ping; a single CRLF (a pong) is skipped."""
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n") == [KEEPALIVE]
    assert framer.feed(b"\r\n" + MSG) == [MSG]
    assert framer.feed(b"\r\n") == []
    assert framer.feed(b"\r\n") == [KEEPALIVE]
    assert PONG == b"\r\n"


def test_ping_split_over_reads_is_still_a_ping():
    """A ping whose four bytes arrive in two reads is recognised, not mistaken for two pongs."""
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r") == []
    assert framer.feed(b"\n" + MSG2) == [KEEPALIVE, MSG2]


def test_framed_message_parses_with_its_body():
    """What the framer cuts is what parse_message reads."""
    (data,) = StreamFramer().feed(MSG)
    assert parse_message(data).body == b"hello"


@pytest.mark.parametrize("data, reason", [
    (b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n", "Missing Content-Length on a stream"),
    (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: abc\r\n\r\n", "Bad Content-Length header"),
    (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n", "Bad Content-Length header"),
    (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n", "Conflicting Content-Length headers"),
    (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 70000\r\n\r\n", "Body too large"),
])
def test_unframable_stream_raises(data, reason):
    """Missing, garbage, conflicting or oversized Content-Length breaks the stream."""
    with pytest.raises(FramingError) as info:
        StreamFramer().feed(data)
    assert info.value.reason == reason


def test_header_block_without_end_over_the_limit_raises():
    """Bytes that never end a header block are refused once they pass max_header_bytes."""
    framer = StreamFramer(max_header_bytes=100)
    assert framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\n") == []
    with pytest.raises(FramingError):
        framer.feed(b"X-Filler: " + b"a" * 100)


def test_broken_framer_stays_broken():
    """After a framing error every later feed raises too: the transport must close the connection."""
    framer = StreamFramer()
    with pytest.raises(FramingError):
        framer.feed(b"GARBAGE\r\n\r\n")
    with pytest.raises(FramingError):
        framer.feed(MSG)


def test_folded_content_length_is_read():
    """A Content-Length value folded onto the next line still frames the body."""
    data = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length:\r\n 3\r\n\r\nabc"
    assert StreamFramer().feed(data) == [data]


@pytest.mark.timeout(20)
def test_long_blank_run_in_content_length_is_refused_promptly():
    """A Content-Length value with a long blank run inside is garbage, found in linear time."""
    framer = StreamFramer(max_header_bytes=70000)
    with pytest.raises(FramingError):
        framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nl: 1" + b" " * 30000 + b"2\r\n\r\n")
    assert StreamFramer().feed(b"OPTIONS sip:a@b SIP/2.0\r\nl:   0   \r\n\r\n") == [
        b"OPTIONS sip:a@b SIP/2.0\r\nl:   0   \r\n\r\n"]
