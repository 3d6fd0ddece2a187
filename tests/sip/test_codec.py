"""The codec: bytes to messages and back, and responses built from requests."""

from __future__ import annotations

import pytest

from b2bua.sip.codec import make_response, parse_message, serialise
from b2bua.sip.errors import SipParseError
from b2bua.sip.headers import Headers
from b2bua.sip.message import SipRequest, SipResponse
from b2bua.sip.uri import SipUri, parse_uri

INVITE = (
    b"INVITE sip:+493012345678@192.0.2.10:5060;user=phone SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK-a1;rport\r\n"
    b"v: SIP/2.0/TCP 198.51.100.2;branch=z9hG4bK-b2 , SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK-c3;received=192.0.2.1\r\n"
    b"Max-Forwards: 69\r\n"
    b"From: \"Caller \\\"One\\\"\" <sip:+4915112345678@carrier.example>;tag=f1\r\n"
    b"t: <sip:+493012345678@b2bua.example>\r\n"
    b"i: call-1@carrier.example\r\n"
    b"CSeq: 101 INVITE\r\n"
    b"m: <sip:gw@198.51.100.1:5060;transport=UDP>\r\n"
    b"Subject: folded\r\n  over two lines\r\n"
    b"c: application/sdp\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"v=0\r\ntrailing garbage"
)


def test_request_views_read_compact_and_folded_headers():
    """Compact names, comma-split Via lines and folded values are read as their long forms."""
    msg = parse_message(INVITE)
    assert isinstance(msg, SipRequest)
    assert msg.method == "INVITE"
    assert msg.uri == SipUri("sip", "+493012345678", None, "192.0.2.10", 5060, (("user", "phone"),))
    assert msg.call_id == "call-1@carrier.example"
    assert (msg.cseq.seq, msg.cseq.method) == (101, "INVITE")
    assert [v.branch for v in msg.vias] == ["z9hG4bK-a1", "z9hG4bK-b2", "z9hG4bK-c3"]
    assert msg.top_via.rport is True
    assert msg.vias[2].host == "2001:db8::1" and msg.vias[2].port == 5070
    assert msg.vias[2].received == "192.0.2.1"
    assert msg.from_.display_name == 'Caller "One"'
    assert msg.from_.tag == "f1" and msg.to.tag is None
    assert msg.contact.uri.transport == "udp"
    assert msg.max_forwards == 69
    assert msg.content_type == "application/sdp"
    assert msg.headers.get("subject") == "folded over two lines"
    assert msg.body == b"v=0\r"


def test_serialise_recomputes_content_length_and_round_trips():
    """Serialising writes the true Content-Length in place and parses back to an equal message."""
    msg = parse_message(INVITE)
    body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    wire = serialise(msg.replace(body=body))
    assert wire.endswith(b"\r\nl: 31\r\n\r\n" + body)
    assert parse_message(wire).body == body
    longer = msg.with_body(body)
    assert longer.headers.get("content-length") == "31"
    assert parse_message(serialise(longer)) == longer
    assert wire.startswith(b"INVITE sip:+493012345678@192.0.2.10:5060;user=phone SIP/2.0\r\n")


def test_serialise_appends_content_length_when_absent():
    """A message without Content-Length gets one on output (mandatory on streams)."""
    msg = SipRequest("OPTIONS", SipUri(host="example.com"), Headers([("Via", "SIP/2.0/UDP h;branch=z9hG4bKx")]))
    assert serialise(msg) == b"OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nContent-Length: 0\r\n\r\n"


def test_make_response_copies_dialog_headers_and_adds_to_tag():
    """RFC 3261 §8.2.6.2: all Vias in order, From, To (+tag), Call-ID, CSeq; nothing else of the request."""
    req = parse_message(INVITE)
    resp = make_response(req, 180, to_tag="b2b-1", headers=[("Contact", "<sip:b2bua@192.0.2.10>")])
    wire = serialise(resp)
    assert wire == (
        b"SIP/2.0 180 Ringing\r\n"
        b"Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK-a1;rport\r\n"
        b"v: SIP/2.0/TCP 198.51.100.2;branch=z9hG4bK-b2 , SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK-c3;received=192.0.2.1\r\n"
        b"From: \"Caller \\\"One\\\"\" <sip:+4915112345678@carrier.example>;tag=f1\r\n"
        b"t: <sip:+493012345678@b2bua.example>;tag=b2b-1\r\n"
        b"i: call-1@carrier.example\r\n"
        b"CSeq: 101 INVITE\r\n"
        b"Contact: <sip:b2bua@192.0.2.10>\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    again = parse_message(wire)
    assert isinstance(again, SipResponse) and again.to.tag == "b2b-1" and again.reason == "Ringing"


def test_make_response_keeps_an_existing_to_tag():
    """A request inside a dialog already has a To tag; the response does not add a second one."""
    req = parse_message(INVITE.replace(b"t: <sip:+493012345678@b2bua.example>", b"t: <sip:x@y>;tag=old"))
    assert make_response(req, 200, to_tag="new").to.tag == "old"


@pytest.mark.parametrize("data, status", [
    (b"OPTIONS sip:a@b SIP/3.0\r\nVia: SIP/3.0/UDP h\r\n\r\n", 505),
    (b"OPTIONS sip:a@b SIP/2.0\r\nBad Header Line\r\n\r\n", 400),
    (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\nabc", 400),
    (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n", 400),
    (b"SIP/2.0 2000 OK\r\n\r\n", 400),
    (b"SIP/2.0 099 Low\r\n\r\n", 400),
    (b"OPTIONS  sip:a@b SIP/2.0\r\n\r\n", 400),
    (b"OPTIONS sip:a@b SIP/2.0\r\nTo: x\nFrom: y\r\n\r\n", 400),
    (b"", 400),
])
def test_unreadable_messages_raise_the_one_parse_error(data, status):
    """Broken start lines, header lines and Content-Length raise SipParseError with the status to answer."""
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == status


def test_parse_error_keeps_headers_for_addressing_a_400():
    """A bad Content-Length still yields the Via/From/To/Call-ID/CSeq lines read so far."""
    with pytest.raises(SipParseError) as info:
        parse_message(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: c1\r\nl: -1\r\n\r\n")
    assert info.value.partial.get("call-id") == "c1"
    assert info.value.partial.get("via") == "SIP/2.0/UDP h;branch=z9hG4bK1"


def test_leading_crlf_before_the_start_line_is_ignored():
    """RFC 3261 §7.5: CRLFs before the start line are skipped."""
    msg = parse_message(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n")
    assert msg.method == "OPTIONS" and msg.call_id == "x"


LONG_RUN = 20000


@pytest.mark.timeout(20)
@pytest.mark.parametrize("text", [
    "tel:+" + "1" * LONG_RUN + "x",
    "tel:" + "1" * LONG_RUN + "x",
    "sip:a@" + "a-" * LONG_RUN + "!",
    "sip:" + "a" * LONG_RUN + "%zz@h",
])
def test_long_adversarial_uris_are_refused_promptly(text):
    """Long runs that made a backtracking pattern quadratic (tel numbers) are refused in linear time."""
    with pytest.raises(SipParseError):
        parse_uri(text)


@pytest.mark.timeout(20)
def test_long_blank_run_in_via_sent_by_is_refused_promptly():
    """Whitespace inside sent-by away from the colon is a 400, however long the run."""
    from b2bua.sip.headers import Via
    with pytest.raises(SipParseError):
        Via.parse("SIP/2.0/UDP h" + " " * LONG_RUN + "x;branch=z9hG4bK1")
    assert Via.parse("SIP/2.0/UDP h : 5060;branch=z9hG4bK1").port == 5060


@pytest.mark.parametrize("name, value", [("X-Caller", "a\r\nVia: forged"), ("X-Caller", "a\nb"),
                                         ("X\r\nVia", "x"), ("Subject", "cr\ronly")])
def test_serialise_refuses_line_breaks_in_built_headers(name, value):
    """A header value or name built in code with CR/LF would forge header lines: ValueError, no bytes."""
    msg = parse_message(INVITE).with_header(name, value)
    with pytest.raises(ValueError):
        serialise(msg)
