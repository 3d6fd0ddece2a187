"""RFC 4475 and RFC 5118 torture messages through the codec and the request checks.

One test case per message. What each must give is the table of
``tests/data/sip-torture/README.md`` (from the RFCs' sections 3 and 4).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from b2bua.sip.checks import check_request, check_response
from b2bua.sip.codec import parse_message, serialise
from b2bua.sip.errors import SipParseError
from b2bua.sip.headers import header_key
from b2bua.sip.message import SipRequest, SipResponse

DATA = Path(__file__).parent.parent / "data" / "sip-torture"
EVERY_METHOD = {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "MESSAGE", "NEWMETHOD",
                "!interesting-Method0123456789_*+`.%indeed'~", "RE%47IST%45R"}

VALID = ["wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "semiuri",
         "transports", "mpart01", "unreason", "noreason", "inv2543", "badbranch", "cparam01",
         "cparam02", "regescrt", "unksm2", "bcast", "zeromf", "dblreq", "escruri"]
INVALID = ["badinv01", "clerr", "ncl", "scalar02", "scalarlg", "quotbal", "ltgtruri", "lwsruri",
           "lwsstart", "baddate", "regbadct", "badaspec", "baddn", "mismatch01", "mismatch02",
           "bigcode", "trws", "insuf", "multi01", "mcl01"]
ANSWERED = {"badvers": 505, "unkscm": 416, "novelsc": 416, "bext01": 420, "invut": 415,
            "sdp01": 406, "regaut01": 405}
IPV6_GOOD = ["ipv6-good", "ipv6-correct-abnf-2-colons", "port-unambiguous", "via-received-param-with-delim",
             "via-received-param-no-delim", "mult-ip-in-header", "mult-ip-in-sdp", "ipv6-in-sdp",
             "ipv4-mapped-ipv6", "port-ambiguous"]
IPV6_BAD = ["ipv6-bad", "ipv6-bug-abnf-3-colons"]


def load(name: str) -> bytes:
    folder = "rfc4475" if (DATA / "rfc4475" / f"{name}.dat").exists() else "rfc5118"
    return (DATA / folder / (f"{name}.dat" if folder == "rfc4475" else name)).read_bytes()


def outcome(data: bytes, **kwargs) -> int | None:
    """What the codec and the checks make of ``data``: a status to answer / drop (400), or None (accepted)."""
    try:
        msg = parse_message(data)
    except SipParseError as exc:
        return exc.status
    if isinstance(msg, SipResponse):
        return 400 if check_response(msg) else None
    answer = check_request(msg, **kwargs)
    return None if answer is None else answer.status


def without_length(msg):
    return [(header_key(n), v) for n, v in msg.headers if header_key(n) != "content-length"]


def test_every_torture_file_is_covered():
    """No message of the copied RFC files escapes the tables below."""
    names = {p.stem for p in (DATA / "rfc4475").glob("*.dat")} | {p.name for p in (DATA / "rfc5118").iterdir()}
    assert names == set(VALID) | set(INVALID) | set(ANSWERED) | set(IPV6_GOOD) | set(IPV6_BAD)


@pytest.mark.parametrize("name", VALID + IPV6_GOOD)
def test_valid_message_is_accepted_and_round_trips(name):
    """Odd but legal messages parse, pass the checks, and re-serialise to the same message."""
    msg = parse_message(load(name))
    if isinstance(msg, SipRequest):
        assert check_request(msg, allowed_methods=EVERY_METHOD) is None
        for view in ("cseq", "vias", "from_", "to", "contacts", "route", "record_route", "max_forwards"):
            getattr(msg, view)
    else:
        assert check_response(msg) is None
    again = parse_message(serialise(msg))
    assert type(again) is type(msg)
    assert again.body == msg.body
    assert without_length(again) == without_length(msg)
    assert (getattr(again, "method", None), getattr(again, "uri", None), getattr(again, "status", None)) == \
        (getattr(msg, "method", None), getattr(msg, "uri", None), getattr(msg, "status", None))
    assert parse_message(serialise(again)) == again


@pytest.mark.parametrize("name", INVALID + IPV6_BAD)
def test_invalid_message_is_answered_400(name):
    """Broken messages raise SipParseError(400) or are answered 400 by check_request (responses: dropped)."""
    assert outcome(load(name), allowed_methods=EVERY_METHOD) == 400


@pytest.mark.parametrize("name", sorted(ANSWERED))
def test_application_error_gets_its_rfc_answer(name):
    """505, 416, 420, 415, 406 and 405 as RFC 4475 section 3.3 asks of a UAS that is no registrar."""
    assert outcome(load(name)) == ANSWERED[name]


def test_dblreq_handles_the_first_message_and_ignores_the_rest():
    """RFC 4475 3.1.2.? dblreq: the REGISTER is read, the trailing INVITE is ignored."""
    msg = parse_message(load("dblreq"))
    assert msg.method == "REGISTER" and msg.body == b""
    assert msg.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"


def test_bext01_lists_the_unknown_require_options():
    """420 carries Unsupported with exactly the options of Require (Proxy-Require is not ours)."""
    answer = check_request(parse_message(load("bext01")))
    assert answer.headers.get("unsupported") == "nothingSupportsThis, nothingSupportsThisEither"


def test_invut_answer_says_what_is_accepted():
    """415 carries Accept: application/sdp."""
    answer = check_request(parse_message(load("invut")))
    assert answer.headers.get("accept") == "application/sdp"


def test_regaut01_answer_lists_allowed_methods():
    """We are no registrar: REGISTER gets 405 with Allow naming what we take."""
    answer = check_request(parse_message(load("regaut01")))
    assert "REGISTER" not in answer.headers.get("allow")
    assert "INVITE" in answer.headers.get("allow")


def test_badvers_error_keeps_headers_to_address_the_505():
    """SIP/7.0 raises status 505 with the header lines read, so the answer can be addressed."""
    with pytest.raises(SipParseError) as info:
        parse_message(load("badvers"))
    assert info.value.status == 505
    assert info.value.partial.get("call-id") == "badvers.31417@c.example.com"


def test_esc01_unescapes_uri_components():
    """%-escapes in user parts and parameters read as the characters they stand for."""
    msg = parse_message(load("esc01"))
    assert msg.uri.user == "sips:user@example.com"
    assert msg.to.uri.user == "user"
    assert msg.contact.uri.params == (("lr", None), ("name", "value%41"))


def test_wsinv_reads_whitespace_everywhere():
    """Folded, padded and oddly cased headers all read correctly."""
    msg = parse_message(load("wsinv"))
    assert msg.max_forwards == 68 and msg.cseq.seq == 9
    assert [v.transport for v in msg.vias] == ["UDP", "TCP", "UDP"]
    assert msg.to.tag == "1918181833n" and msg.from_.tag == "98asjd8"
    assert msg.from_.display_name == 'J Rosenberg \\"'


def test_ipv6_references_keep_the_port_apart():
    """RFC 5118: [2001:db8::10:5070] is a host; [2001:db8::10]:5070 is host and port; received keeps IPv6."""
    assert parse_message(load("port-ambiguous")).uri.host == "2001:db8::10:5070"
    unambiguous = parse_message(load("port-unambiguous")).uri
    assert (unambiguous.host, unambiguous.port) == ("2001:db8::10", 5070)
    for name in ("via-received-param-with-delim", "via-received-param-no-delim"):
        assert parse_message(load(name)).top_via.received == "2001:db8::9:255"


@pytest.mark.parametrize("name, status, reason", [
    ("badvers", 505, "Version Not Supported"),
    ("clerr", 400, "Content-Length larger than the body"),
    ("ncl", 400, "Bad Content-Length header"),
])
def test_unparsed_requests_get_an_addressed_stateless_answer(name, status, reason):
    """Unparsable requests are answered from the headers read: Vias, From, To (+stable tag), Call-ID, CSeq only."""
    from b2bua.sip.checks import answer_parse_error
    data = load(name)
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    answer = answer_parse_error(data, info.value)
    assert (answer.status, answer.reason) == (status, reason)
    again = parse_message(serialise(answer))
    assert sorted(header_key(n) for n, _ in again.headers) == ["call-id", "content-length", "cseq", "from", "to", "via"]
    assert again.call_id == info.value.partial.get("call-id")
    assert again.to.tag and again.to.tag == answer_parse_error(data, info.value).to.tag


@pytest.mark.parametrize("name", ["bigcode"])
def test_unparsed_responses_are_never_answered(name):
    """A response that does not parse is dropped: no answer is built for it."""
    from b2bua.sip.checks import answer_parse_error
    data = load(name)
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert answer_parse_error(data, info.value) is None
