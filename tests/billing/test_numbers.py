"""Number normalisation and classing: the account key must not depend on how a number was written."""

import pytest

from billing.numbers import NumberRefused, classify, entered, national, normalise
from billing.profile import CallerClass


@pytest.mark.parametrize("text", ["0151 12345678", "+4915112345678", "004915112345678",
                                  "+49 (151) 123-456-78", "015112345678"])
def test_forms_of_one_mobile_number_give_one_e164(text):
    """Every usual way of writing a German mobile number normalises to the same E.164."""
    assert normalise(text, "DE") == "+4915112345678"


@pytest.mark.parametrize("text", ["", "abc", "12", "+49", "0" * 50, "anonymous"])
def test_garbage_is_no_number(text):
    """Text that is no possible number gives None, never an exception."""
    assert normalise(text, "DE") is None


def test_more_digits_than_e164_allows_is_no_number():
    """E.164 numbers have at most 15 digits with the country code: "192713431832037" taken as German
    national would be +49 and 15 digits (17), which phonenumbers calls possible; the store refuses such
    a key, so the API answered 400 where its document promises 404 (found by schemathesis)."""
    assert normalise("192713431832037", "DE") is None
    assert normalise("+49192713431832037", "DE") is None
    assert normalise("+4930123456789012", "DE") is None          # 16 digits
    assert normalise("+493012345678901", "DE") == "+493012345678901"  # 15 digits: the longest there is


def test_region_applies_only_to_national_forms():
    """A national number takes the default region; an international one keeps its country."""
    assert normalise("030 1234567", "DE") == "+49301234567"
    assert normalise("+43 1 2345678", "DE") == "+4312345678"


def test_mobile_and_landline():
    """German 015x is mobile, 030 Berlin is landline, an unknown range falls back to landline."""
    assert classify("+4915112345678") is CallerClass.MOBILE
    assert classify("+4917612345678") is CallerClass.MOBILE
    assert classify("+49301234567") is CallerClass.LANDLINE
    assert classify("+999123") is CallerClass.LANDLINE


def test_national_format_for_showing_back():
    """Shown back the way phonenumbers groups it nationally, to catch typos on the page."""
    assert national("+4915112345678") == "01511 2345678"


@pytest.mark.parametrize("text", ["0151 12345678", "030 1234567", "+1 202 555 0100", "0043 1 2345678"])
def test_typed_valid_numbers_are_entered(text):
    """A number a person types is taken when phonenumbers knows it as valid for its region, as E.164."""
    assert entered(text, "DE") == normalise(text, "DE")


@pytest.mark.parametrize("text, reason, words", [
    ("0151123", "invalid", "not a valid number of DE: '0151123'"),       # possible, but no such mobile number
    ("+49 89 1", "too_short", "'+49 89 1' is too short"),
    ("+49 30 1234 5678 9012 34", "too_long", "is too long"),
    ("abc", "not_a_number", "not a phone number: 'abc'"),
    ("", "not_a_number", "not a phone number: ''"),
    ("+491234567890", "invalid", "not a valid number of DE"),           # 012 is no German area code
])
def test_typed_numbers_that_cannot_exist_are_refused_with_the_reason(text, reason, words):
    """``0151123`` was accepted by the page and the CLI (it is "possible"); typed input must be valid,
    and the refusal says why in words and as a key."""
    with pytest.raises(NumberRefused) as caught:
        entered(text, "DE")
    assert caught.value.reason == reason and words in str(caught.value)
