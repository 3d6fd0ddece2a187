"""check_request: the RFC 3261 §8.2 answer for a request the core cannot accept."""

from __future__ import annotations

import pytest

from b2bua.sip.checks import check_request, check_response
from b2bua.sip.codec import parse_message, serialise
from b2bua.sip.headers import Headers
from b2bua.sip.message import SipRequest

BASE = [
    ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1"),
    ("Max-Forwards", "70"),
    ("From", "<sip:+4915112345678@carrier.example>;tag=a"),
    ("To", "<sip:+493012345678@b2bua.example>"),
    ("Call-ID", "check-1"),
    ("CSeq", "1 INVITE"),
    ("Contact", "<sip:gw@192.0.2.1>"),
]
SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def invite(*extra, drop=(), method="INVITE", uri="sip:+493012345678@b2bua.example", body=b"",
           content_type=None) -> SipRequest:
    lines = [(n, v) for n, v in BASE if n.lower() not in drop]
    if method != "INVITE":
        lines = [(n, f"1 {method}") if n == "CSeq" else (n, v) for n, v in lines]
    lines += list(extra)
    if content_type:
        lines.append(("Content-Type", content_type))
    wire = f"{method} {uri} SIP/2.0\r\n" + "".join(f"{n}: {v}\r\n" for n, v in lines)
    wire += f"Content-Length: {len(body)}\r\n\r\n"
    return parse_message(wire.encode() + body)


def test_a_good_invite_passes():
    """A well-formed INVITE with SDP gets no answer from the checks."""
    assert check_request(invite(body=SDP, content_type="application/sdp")) is None


@pytest.mark.parametrize("missing", ["via", "from", "to", "call-id", "cseq"])
def test_missing_mandatory_header_is_400_with_reason(missing):
    """Each mandatory header missing gives 400 whose reason phrase names it."""
    answer = check_request(invite(drop=(missing,)))
    assert answer.status == 400
    assert answer.reason.lower() == f"missing {missing} header"


def test_duplicate_call_id_is_400():
    """Two Call-ID lines: 400 Duplicate Call-ID header."""
    answer = check_request(invite(("Call-ID", "other")))
    assert (answer.status, answer.reason) == (400, "Duplicate Call-ID header")


@pytest.mark.parametrize("mf", ["256", "-1", "ten"])
def test_bad_max_forwards_is_400(mf):
    """Max-Forwards outside 0..255 or not a number is a 400."""
    msg = invite(drop=("max-forwards",), *[("Max-Forwards", mf)])
    assert check_request(msg).status == 400


def test_content_length_mismatch_on_a_built_message_is_400():
    """A request whose Content-Length line disagrees with its body is refused."""
    msg = invite().replace(body=b"xyz")
    assert check_request(msg).reason == "Content-Length does not match the body"


def test_zero_max_forwards_on_invite_is_483_but_options_is_served():
    """We would place an INVITE onward: 483. An OPTIONS with Max-Forwards 0 is ours to answer."""
    assert check_request(invite(drop=("max-forwards",), *[("Max-Forwards", "0")])).status == 483
    options = invite(("Max-Forwards", "0"), drop=("max-forwards",), method="OPTIONS")
    assert check_request(options) is None


def test_tel_request_uri_is_accepted_and_other_schemes_are_416():
    """tel: routes by number like sip:; mailto: is not a scheme we serve."""
    assert check_request(invite(uri="tel:+493012345678")) is None
    assert check_request(invite(uri="mailto:a@example.com")).status == 416


def test_unknown_method_is_405_with_allow():
    """SUBSCRIBE is not ours: 405 and Allow lists the allowed methods."""
    answer = check_request(invite(method="SUBSCRIBE"), allowed_methods={"INVITE", "BYE"})
    assert answer.status == 405
    assert answer.headers.get("allow") == "BYE, INVITE"


def test_require_of_unknown_option_is_420_listing_only_unknown_ones():
    """Require: timer, foo with timer supported: 420 Unsupported: foo (case-insensitive option match)."""
    answer = check_request(invite(("Require", "Timer, foo")), supported_extensions={"timer"})
    assert answer.status == 420
    assert answer.headers.get("unsupported") == "foo"


def test_require_is_not_checked_on_ack_and_cancel():
    """RFC 3261 §8.2.2.3: ACK and CANCEL never get 420."""
    assert check_request(invite(("Require", "foo"), method="CANCEL")) is None


def test_non_sdp_invite_body_is_415_and_multipart_with_sdp_is_accepted():
    """text/plain is refused with Accept; multipart/mixed carrying SDP is taken."""
    answer = check_request(invite(body=b"hi", content_type="text/plain"))
    assert answer.status == 415 and answer.headers.get("accept") == "application/sdp"
    body = (b"--b1\r\nContent-Type: application/sdp\r\n\r\n" + SDP + b"\r\n--b1\r\n"
            b"Content-Type: application/isup\r\n\r\nxx\r\n--b1--\r\n")
    assert check_request(invite(body=body, content_type="multipart/mixed;boundary=b1")) is None
    plain = b"--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1--\r\n"
    assert check_request(invite(body=plain, content_type="multipart/mixed; boundary=b1")).status == 415


def test_compressed_body_is_415():
    """A Content-Encoding other than identity is refused (415 with Accept-Encoding)."""
    answer = check_request(invite(("Content-Encoding", "gzip"), body=SDP, content_type="application/sdp"))
    assert answer.status == 415 and answer.headers.get("accept-encoding") == "identity"


def test_accept_without_sdp_on_invite_is_406():
    """The caller would not take our SDP answer: 406 (RFC 4475 sdp01)."""
    assert check_request(invite(("Accept", "text/plain"))).status == 406
    assert check_request(invite(("Accept", "application/*"))) is None


def test_other_host_is_404_when_our_hosts_given():
    """With our_hosts, a sip Request-URI for another host is not ours to serve."""
    assert check_request(invite(), our_hosts={"b2bua.example"}) is None
    assert check_request(invite(uri="sip:x@elsewhere.example"), our_hosts={"b2bua.example"}).status == 404


def test_answers_carry_one_stable_to_tag():
    """The answer adds a To tag, the same for a retransmission, and a given tag wins."""
    first = check_request(invite(method="SUBSCRIBE"))
    again = check_request(invite(method="SUBSCRIBE"))
    assert first.to.tag and first.to.tag == again.to.tag
    assert check_request(invite(method="SUBSCRIBE"), to_tag="mine").to.tag == "mine"
    wire = serialise(first)
    assert wire.startswith(b"SIP/2.0 405 Method Not Allowed\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\n")


def test_wrong_version_on_a_built_request_is_505():
    """A request object carrying another version gets 505."""
    assert check_request(invite().replace(version="SIP/3.0")).status == 505


def test_check_response_drops_responses_it_cannot_match():
    """A response with a bad CSeq or no Via is reported for dropping; a good one passes."""
    ok = parse_message(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
                       b"To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    assert check_response(ok) is None
    assert check_response(ok.with_header_replaced("CSeq", "x INVITE")) == "Bad CSeq header"
    assert check_response(ok.without_headers("via")) == "Missing Via header"


def test_built_request_without_content_length_is_fine():
    """A request object built in code (no Content-Length line) passes; serialise adds the length."""
    msg = SipRequest("OPTIONS", invite().uri, Headers([(n, v.replace("INVITE", "OPTIONS")) for n, v in BASE]))
    assert check_request(msg) is None


def test_syntax_comes_before_method_and_scheme():
    """RFC 3261 §8.2 order: an unreadable request is 400 even when its method and scheme are refused too."""
    msg = invite(("CSeq", "1 SUBSCRIBE"), drop=("cseq",), method="SUBSCRIBE", uri="mailto:a@b").without_headers("from")
    assert check_request(msg, allowed_methods={"INVITE"}).status == 400
    assert check_request(invite(method="SUBSCRIBE", uri="mailto:a@b"), allowed_methods={"INVITE"}).status == 405


def test_contact_wildcard_only_in_register():
    """Contact: * is a REGISTER form; in an INVITE it is a 400."""
    assert check_request(invite(("Contact", "*"), drop=("contact",))).reason == "Bad Contact header"
    register = invite(("Contact", "*"), ("Expires", "0"), drop=("contact",), method="REGISTER")
    assert check_request(register, allowed_methods={"REGISTER"}) is None
