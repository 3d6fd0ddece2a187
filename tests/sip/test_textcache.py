"""Parsed values kept per exact text (``b2bua.sip.textcache``): the same value, the same errors, bounded."""

from __future__ import annotations

import pytest

from b2bua.sip import headers
from b2bua.sip.errors import SipParseError
from b2bua.sip.headers import CSeq, NameAddr, Via
from b2bua.sip.textcache import cached_parser
from b2bua.sip.uri import parse_uri


def test_a_repeated_text_gives_the_value_read_the_first_time():
    """The From of every message in a dialog is read once: the second parse is the same frozen object."""
    text = '"Alice" <sip:alice@198.51.100.7:5060;user=phone>;tag=as5f2a1b3c'
    first = NameAddr.parse(text, "From")
    assert NameAddr.parse(text, "To") is first
    assert parse_uri("sip:alice@198.51.100.7:5060;user=phone") is first.uri
    via = "SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-1;rport"
    assert Via.parse(via) is Via.parse(via)
    assert CSeq.parse("101 INVITE") is CSeq.parse("101 INVITE")


def test_a_kept_uri_is_still_written_back_as_received():
    """Two spellings of one URI are two entries: each writes back its own text."""
    upper = parse_uri("SIP:Bob@Example.COM;Transport=UDP", "To")
    lower = parse_uri("sip:bob@example.com;transport=UDP", "To")
    assert str(upper) == "SIP:Bob@Example.COM;Transport=UDP"
    assert str(lower) == "sip:bob@example.com;transport=UDP"
    assert str(parse_uri("SIP:Bob@Example.COM;Transport=UDP")) == "SIP:Bob@Example.COM;Transport=UDP"


@pytest.mark.parametrize("what", ["From", "To", "Contact"])
def test_an_error_names_the_header_it_was_asked_for_each_time(what):
    """A bad text is never kept: each parse raises with the caller's label, also after another label failed."""
    bad = "<sip:alice@bad host>;tag=1"
    for label in ("Route", what):
        with pytest.raises(SipParseError) as err:
            NameAddr.parse(bad, label)
        assert err.value.reason == f"Bad {label}"
    with pytest.raises(SipParseError) as err:
        parse_uri("sip:alice@", what)
    assert err.value.reason == f"Missing host in {what}"


def test_only_good_short_texts_are_kept_and_the_cache_is_bounded():
    """Texts over max_chars and texts that fail are parsed each time; the LRU never holds more than maxsize."""
    calls: list[str] = []

    def parse(text: str, what: str) -> str:
        calls.append(text)
        if text.startswith("bad"):
            raise SipParseError(f"Bad {what}")
        return text.upper()

    cached = cached_parser(parse, maxsize=2, max_chars=8)
    assert cached("short", "X") == cached("short", "X") == "SHORT"
    assert calls == ["short"]
    assert cached("far too long", "X") == cached("far too long", "X") == "FAR TOO LONG"
    assert calls.count("far too long") == 2
    for _ in range(2):
        with pytest.raises(SipParseError, match="Bad Y"):
            cached("bad", "Y")
    assert cached.cache_info().currsize == 1
    cached("a", "X"), cached("b", "X"), cached("c", "X")
    assert cached.cache_info().currsize == 2


def test_the_texts_of_calls_long_set_up_do_not_pile_up():
    """Each call's Via branches and From/To tags are its own: after 1000 set-ups the node's parsers keep at most
    512 texts each (at 4096, 600 held calls kept ~5.5 KB each of them, ``bench/memory.py --by-site``), and the
    texts of the set-up under way are still read once."""
    via_cache, name_addr_cache = headers._parse_via_cached, headers._parse_name_addr_cached
    for n in range(1000):
        via = f"SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-{n}-1;rport"
        from_ = f'"Alice" <sip:alice@198.51.100.7:5060;user=phone>;tag=as{n}'
        assert Via.parse(via) is Via.parse(via)
        assert NameAddr.parse(from_, "From") is NameAddr.parse(from_, "To")
    assert via_cache.cache_info().currsize <= 512
    assert name_addr_cache.cache_info().currsize <= 512


def test_a_uri_remembers_its_text_in_a_slot_and_copies_render_afresh():
    """A held call keeps URIs (its dialogs' targets and addresses, the text cache's values): slotted, with the text
    it was read from in a field outside equality (an instance ``__dict__`` each was ~110 B more a URI); a copy with
    other parameters is written from its own fields, not from the text of the one it was made from."""
    uri = parse_uri("SIP:Carol@Example.COM;Transport=UDP", "Contact")
    assert not hasattr(uri, "__dict__")
    assert str(uri) == "SIP:Carol@Example.COM;Transport=UDP"
    assert uri == parse_uri("SIP:Carol@Example.COM;Transport=UDP") and hash(uri) == hash(uri.with_params(lr=None))
    assert str(uri.with_params(lr=True)) == "sip:Carol@example.com;transport=UDP;lr"
