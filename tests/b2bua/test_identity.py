"""Caller identification: From, trusted P-Asserted-Identity, privacy, and the trust boundary."""

from __future__ import annotations

import ipaddress

import pytest

from b2bua.identity import identify, is_trusted
from billing.profile import CallerClass

TRUSTED = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("192.0.2.0/24"))


def ident(from_value, privacy=(), pai=(), host="127.0.0.1"):
    return identify(from_value=from_value, privacy_values=list(privacy), pai_values=list(pai),
                    source_host=host, trusted=TRUSTED, default_region="DE")


def test_plain_from_number_is_the_caller():
    """A shown number in From is the caller, normalised to E.164 and classed."""
    who = ident('"Max" <sip:015112345678@carrier.example;user=phone>;tag=1')
    assert (who.number, who.source, who.privacy, who.caller_class) == (
        "+4915112345678", "from", False, CallerClass.MOBILE)


def test_withheld_with_trusted_pai_tel_form():
    """Privacy: id and an anonymous From: the trusted carrier's tel: PAI names the caller, flagged private."""
    who = ident('"Anonymous" <sip:anonymous@anonymous.invalid>;tag=9', ["id"], ["<tel:+49301234567>"])
    assert (who.number, who.source, who.privacy, who.caller_class) == (
        "+49301234567", "pai", True, CallerClass.LANDLINE)


def test_pai_sip_user_phone_form_from_trusted_cidr():
    """The sip:+49...;user=phone PAI form, from an address inside a trusted CIDR."""
    who = ident("<sip:anonymous@anonymous.invalid>;tag=9", ["id"],
                ["<sip:+4915112345678@carrier.example;user=phone>"], host="192.0.2.77")
    assert who.number == "+4915112345678" and who.source == "pai"


def test_pai_phone_context_is_honoured():
    """A local number with phone-context=+49 is read in that country (RFC 3966)."""
    who = ident("<sip:anonymous@anonymous.invalid>;tag=9", ["id"], ["<tel:030123456;phone-context=+49>"])
    assert who.number == "+4930123456"


def test_untrusted_pai_is_ignored():
    """The same PAI from an address outside the trust domain identifies nobody."""
    who = ident("<sip:anonymous@anonymous.invalid>;tag=9", ["id"], ["<tel:+49301234567>"], host="203.0.113.5")
    assert (who.number, who.source, who.untrusted_pai, who.privacy) == (None, "none", True, True)


def test_privacy_id_hides_even_a_shown_from():
    """With Privacy: id the From is not used even when it carries a number; the PAI is."""
    who = ident("<sip:+4930999999@carrier.example>;tag=1", ["id"], ["<tel:+49301234567>"])
    assert who.number == "+49301234567" and who.privacy is True


def test_withheld_without_pai_is_unidentified():
    who = ident("<sip:anonymous@anonymous.invalid>;tag=1", [], [])
    assert (who.number, who.source, who.privacy) == (None, "none", True)


@pytest.mark.parametrize("bad", ["<sip:@>", "garbage <<", "", None])
def test_broken_from_is_no_identity_not_a_crash(bad):
    assert ident(bad).number is None


def test_is_trusted():
    assert is_trusted("192.0.2.200", TRUSTED) and not is_trusted("198.51.100.1", TRUSTED)
    assert not is_trusted("not-an-ip", TRUSTED)


@pytest.mark.parametrize("from_value", [
    "<sip:+4915112345678@carrier.example;user=phone>;tag=1",
    "<sip:015112345678@198.51.100.9>;tag=1",
    "<tel:+4915112345678>;tag=1",
])
def test_a_from_number_from_an_untrusted_address_identifies_nobody(from_value):
    """Anyone can write a victim's number into From: from outside the trust domain it names no caller.

    (The attack run charged a victim's credit with a forged From from an untrusted address.)"""
    who = ident(from_value, host="203.0.113.5")
    assert (who.number, who.source, who.untrusted_source) == (None, "none", True)


def test_the_same_from_from_a_trusted_carrier_is_believed():
    """The trust boundary is the source address: the same From from a trusted carrier names the caller."""
    who = ident("<tel:+4915112345678>;tag=1", host="192.0.2.10")
    assert (who.number, who.source, who.untrusted_source) == ("+4915112345678", "from", False)


def test_a_new_callers_number_is_parsed_once(monkeypatch):
    """Identifying a caller not seen before parses its number once (phonenumbers' parsing is the dearest
    part of it): the E.164 form and the mobile/landline class come from the same parse."""
    import phonenumbers

    from billing import numbers
    parsed = []
    real = phonenumbers.parse
    monkeypatch.setattr(phonenumbers, "parse", lambda *a, **kw: parsed.append(a[0]) or real(*a, **kw))
    for remembered in vars(numbers).values():   # every lru_cache of the module: the number is new to it
        if hasattr(remembered, "cache_clear"):
            remembered.cache_clear()
    who = ident("<sip:015112345678@carrier.example>")
    assert (who.number, who.caller_class) == ("+4915112345678", CallerClass.MOBILE)
    assert parsed == ["015112345678"]
