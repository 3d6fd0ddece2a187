"""URIs: sip/sips/tel/other schemes, escapes, IPv6, parameters (RFC 3261 §19.1, RFC 3966)."""

from __future__ import annotations

import pytest

from b2bua.sip.errors import SipParseError
from b2bua.sip.uri import AbsoluteUri, SipUri, TelUri, parse_uri


def test_full_sip_uri_reads_every_part():
    """user, password, host (lower-cased), port, params in order, headers; a changed copy is written canonically."""
    uri = parse_uri("SIP:alice:secret@Example.COM:5070;Transport=TCP;lr;maddr=10.0.0.1?Subject=hi&Priority=urgent")
    assert uri == SipUri("sip", "alice", "secret", "example.com", 5070,
                         (("transport", "TCP"), ("lr", None), ("maddr", "10.0.0.1")),
                         (("Subject", "hi"), ("Priority", "urgent")))
    assert uri.transport == "tcp" and uri.lr and uri.maddr == "10.0.0.1"
    text = "SIP:alice:secret@Example.COM:5070;Transport=TCP;lr;maddr=10.0.0.1?Subject=hi&Priority=urgent"
    assert str(uri) == text, "a parsed URI is written back as received"
    assert str(uri.replace(port=5071)) == \
        "sip:alice:secret@example.com:5071;transport=TCP;lr;maddr=10.0.0.1?Subject=hi&Priority=urgent"


def test_transport_param_compares_case_insensitively():
    """A Contact with transport=UDP (as SIPp sends) routes like transport=udp."""
    assert parse_uri("sip:a@h;transport=UDP").transport == parse_uri("sip:a@h;transport=udp").transport == "udp"
    assert parse_uri("sip:a@h;transport=UDP").equivalent(parse_uri("sip:a@H;TRANSPORT=udp"))
    assert not parse_uri("sip:a@h;transport=tcp").equivalent(parse_uri("sip:a@h"))


def test_escapes_read_as_characters_and_are_written_back_escaped():
    """%41 is A; characters the user part cannot hold are escaped on output."""
    uri = parse_uri("sip:I%20have%20spaces@example.net")
    assert uri.user == "I have spaces"
    assert str(uri.replace(port=5060)) == "sip:I%20have%20spaces@example.net:5060"
    assert parse_uri("sip:%41lice@h").user == "Alice"
    assert parse_uri(str(SipUri(user="a@b:c", host="h"))).user == "a@b:c"


def test_ipv6_host_has_no_brackets_and_gets_them_back():
    """[2001:DB8::1]:5060 reads host 2001:db8::1, port 5060, and writes brackets again."""
    uri = parse_uri("sip:bob@[2001:DB8::1]:5060")
    assert (uri.host, uri.port) == ("2001:db8::1", 5060)
    assert str(uri.replace(port=5061)) == "sip:bob@[2001:db8::1]:5061"


def test_tel_uri_keeps_number_and_phone_context():
    """tel: global and local numbers, with phone-context and visual separators."""
    tel = parse_uri("tel:+49-30-1234567;Phone-Context=example.com")
    assert isinstance(tel, TelUri)
    assert tel.number == "+49-30-1234567" and tel.digits == "+49301234567" and tel.is_global
    assert tel.phone_context == "example.com"
    assert str(tel) == "tel:+49-30-1234567;phone-context=example.com"
    assert parse_uri("tel:7042;phone-context=+4930").phone_context == "+4930"


def test_other_schemes_are_kept_as_text():
    """Unknown schemes parse to AbsoluteUri, the scheme lower-cased."""
    assert parse_uri("HTTP://www.example.com/x") == AbsoluteUri("http", "//www.example.com/x")
    assert str(parse_uri("urn:service:sos")) == "urn:service:sos"


def test_with_params_sets_keeps_order_and_removes():
    """with_params changes in place, appends new, removes with None."""
    uri = parse_uri("sip:a@h;transport=udp;lr")
    assert str(uri.with_params(transport="tcp", ob=True, lr=None)) == "sip:a@h;transport=tcp;ob"


@pytest.mark.parametrize("text", [
    "sip:", "sip:a@", "sip:a@h:99999", "sip:a@h:5x", "sip:a b@h", "sip:a@[2001:db8:::1]",
    "sip:a@[2001:db8::1", "sip:a@h;=x", "sip:a@h?x", "sip:a%zz@h", "1sip:a@h", "nocolon",
    "tel:abc-xyz", "tel:", "mailto:", "x:has space", "sip:a@-bad-",
])
def test_bad_uris_raise_the_parse_error(text):
    """Text that is not a URI raises SipParseError with status 400."""
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status == 400
