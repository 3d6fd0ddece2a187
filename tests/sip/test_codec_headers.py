"""Headers and the parsed header forms: lookup, list splitting, Via, NameAddr, CSeq."""

from __future__ import annotations

import pytest

from b2bua.sip.errors import SipParseError
from b2bua.sip.headers import (COMPACT_FORMS, CSeq, Headers, NameAddr, Via, cached_header_key, canonical_name,
                               header_key, split_commas)
from b2bua.sip.uri import AbsoluteUri, SipUri, TelUri

LONG = {"v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact", "l": "Content-Length",
        "c": "Content-Type", "k": "Supported", "s": "Subject", "e": "Content-Encoding", "o": "Event",
        "r": "Refer-To", "x": "Session-Expires", "u": "Allow-Events", "a": "Accept-Contact",
        "b": "Referred-By", "j": "Reject-Contact", "d": "Request-Disposition", "y": "Identity",
        "n": "Identity-Info"}


@pytest.mark.parametrize("short, long", sorted(LONG.items()))
def test_compact_form_is_found_under_its_long_name(short, long):
    """Each compact form of RFC 3261 §7.3.3 and later RFCs answers to its long name, in any case."""
    headers = Headers([(short.upper(), "value")])
    assert headers.get(long.upper()) == "value" and headers.get(long.lower()) == "value"
    assert headers.get(short) == "value"
    assert canonical_name(short) == long


def test_compact_table_has_exactly_the_twenty_forms():
    """The table maps the twenty letters and nothing else."""
    assert set(COMPACT_FORMS) == set(LONG)


def test_get_all_splits_lists_but_not_single_value_headers():
    """Contact and Via split on top-level commas; WWW-Authenticate, Date and Subject never do."""
    headers = Headers([
        ("Contact", '"Doe, John" <sip:a@h;x="1,2">;q=0.5, <sip:b@h>'),
        ("m", "sip:c@h"),
        ("WWW-Authenticate", 'Digest realm="a, b", nonce="x", qop="auth,auth-int"'),
        ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
        ("Subject", "one, two"),
    ])
    assert headers.get_all("contact") == ['"Doe, John" <sip:a@h;x="1,2">;q=0.5', "<sip:b@h>", "sip:c@h"]
    assert headers.get_all("www-authenticate") == ['Digest realm="a, b", nonce="x", qop="auth,auth-int"']
    assert headers.get_all("date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert headers.get_all("subject") == ["one, two"]
    assert headers.get_lines("contact") == ['"Doe, John" <sip:a@h;x="1,2">;q=0.5, <sip:b@h>', "sip:c@h"]


def test_split_commas_skips_empty_elements_and_escaped_quotes():
    """Null list elements are dropped; an escaped quote does not end the quoted string."""
    assert split_commas(r'a, , "x\", y" ,b,') == ["a", r'"x\", y"', "b"]


def test_changes_return_new_headers_and_leave_the_original():
    """with_added (also first), with_replaced and without build new maps; the old one is unchanged."""
    base = Headers([("Via", "SIP/2.0/UDP a"), ("To", "<sip:x@y>"), ("v", "SIP/2.0/UDP b")])
    top = base.with_added("Via", "SIP/2.0/UDP me", first=True)
    assert top.get_all("via") == ["SIP/2.0/UDP me", "SIP/2.0/UDP a", "SIP/2.0/UDP b"]
    assert top.items()[0] == ("Via", "SIP/2.0/UDP me")
    assert base.with_replaced("via", "SIP/2.0/UDP c").items() == (("via", "SIP/2.0/UDP c"), ("To", "<sip:x@y>"))
    assert base.without("VIA").items() == (("To", "<sip:x@y>"),)
    assert base.with_added("X-A", "1").get("x-a") == "1"
    assert base == Headers([("Via", "SIP/2.0/UDP a"), ("To", "<sip:x@y>"), ("v", "SIP/2.0/UDP b")])
    assert "x-a" not in base and "v" in base and base.count("via") == 2


def test_via_reads_every_part_and_writes_params():
    """Protocol, transport (upper), IPv6 host, port, branch, received, rport; with_params stamps a copy."""
    via = Via.parse("sip / 2.0 / udp [2001:DB8::1]:5062;Branch=z9hG4bK77;rport;received=[2001:db8::9]")
    assert (via.protocol, via.transport, via.host, via.port) == ("SIP/2.0", "UDP", "2001:db8::1", 5062)
    assert via.branch == "z9hG4bK77" and via.rport is True and via.received == "2001:db8::9"
    stamped = via.with_params(received="192.0.2.7", rport=40000)
    assert str(stamped) == "SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bK77;rport=40000;received=192.0.2.7"
    assert stamped.rport == 40000 and via.rport is True
    assert Via.parse("SIP/2.0/TCP h").rport is None and Via.parse("SIP/2.0/TCP h").branch is None


@pytest.mark.parametrize("text", ["SIP/2.0/UDP", "SIP/2.0 h", "SIP/2.0/UDP h;;", "SIP/2.0/UDP h:x",
                                  "SIP/2.0/UDP h;rport=abc", "SIP/2.0/UDP h;branch=a b", "garbage"])
def test_bad_via_raises(text):
    """Broken Via text raises SipParseError 400."""
    with pytest.raises(SipParseError) as info:
        Via.parse(text)
    assert info.value.status == 400


def test_name_addr_forms():
    """Quoted and token display names, addr-spec with header params, other schemes, tel, and Contact *."""
    quoted = NameAddr.parse('"A \\"B\\" C" <sip:a@h;lr>;tag=1;expires=60')
    assert quoted.display_name == 'A "B" C' and quoted.uri.lr and quoted.tag == "1"
    assert quoted.param("EXPIRES") == "60"
    token = NameAddr.parse("Alice  Smith <sip:a@h>")
    assert token.display_name == "Alice Smith" and token.tag is None
    spec = NameAddr.parse("sip:a@h;tag=9")
    assert spec.uri == SipUri(user="a", host="h") and spec.tag == "9"
    assert isinstance(NameAddr.parse("<tel:+4930123>").uri, TelUri)
    assert NameAddr.parse("<http://example.com/x>").uri == AbsoluteUri("http", "//example.com/x")
    assert NameAddr.parse("*").is_wildcard and str(NameAddr.parse(" * ")) == "*"
    assert str(spec.with_tag("x")) == "<sip:a@h>;tag=x"


@pytest.mark.parametrize("text", ['"open <sip:a@h>', "< sip:a@h>", "Bell, Alexander <sip:a@h>",
                                  "sip:a@h?subject=x", "<sip:a@h", "<sip:a@h> junk", "<sip:a@h>;;"])
def test_bad_name_addr_raises(text):
    """Unbalanced quotes, spaces inside <>, commas in token names, headers in addr-spec: 400."""
    with pytest.raises(SipParseError):
        NameAddr.parse(text)


def test_cseq_range_and_form():
    """CSeq is a number below 2**31 and a method token."""
    assert CSeq.parse(" 2147483647   INVITE ") == CSeq(2**31 - 1, "INVITE")
    for bad in ("2147483648 INVITE", "1", "x INVITE", "1 INVITE extra", "-1 INVITE", "1 IN/VITE"):
        with pytest.raises(SipParseError):
            CSeq.parse(bad)


def test_unquoted_non_ascii_display_name_is_read_leniently():
    """A carrier's unquoted UTF-8 name is taken as the display name; a comma still is not."""
    assert NameAddr.parse("Jürgen Müller <sip:+4930@h>").display_name == "Jürgen Müller"
    with pytest.raises(SipParseError):
        NameAddr.parse("Müller, Jürgen <sip:+4930@h>")


def test_values_of_key_answer_the_same_with_and_without_the_index():
    """``values_of_key`` reads the index once a lookup built it, else looks at the names (compact and odd
    spellings included); both give the values in order, and None for a key no line has."""
    lines = [("l", "4"), ("Via", "SIP/2.0/UDP a"), ("CONTENT-LENGTH", "5"), ("v", "SIP/2.0/UDP b")]
    fresh, indexed = Headers(lines), Headers(lines)
    indexed.get("via")                       # builds the index
    for headers in (fresh, indexed):
        assert headers.values_of_key("content-length") == ("4", "5")
        assert headers.values_of_key("via") == ("SIP/2.0/UDP a", "SIP/2.0/UDP b")
        assert headers.values_of_key("call-id") is None
    assert header_key("l") == "content-length" and cached_header_key("l") == "content-length"
