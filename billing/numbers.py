"""Caller and service numbers: normalised to E.164 and classed mobile or landline.

An account is keyed by (profile, E.164 number), so every way a number reaches
us (SIP From user, P-Asserted-Identity, the top-up page, an operator typing
``0151 12345678``) goes through :func:`normalise` first.

Tests pin: national, international (+49, 0049) and spaced forms give the same
E.164; garbage, impossible numbers and numbers over E.164's 15 digits give ``None``; German mobile ranges are
mobile, geographic numbers landline.
"""

from __future__ import annotations

import functools

import phonenumbers

from .profile import CallerClass

#: the shortest national number we take for a caller or service number (German numbers have 6+)
MIN_NATIONAL_DIGITS = 5
#: ITU-T E.164: at most 15 digits with the country code (phonenumbers calls a 15-digit German national
#: number "possible", which makes 17)
MAX_E164_DIGITS = 15

_MOBILE_TYPES = frozenset({phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.PAGER})


def parse(text: str, default_region: str = "DE") -> phonenumbers.PhoneNumber | None:
    """The phonenumbers object for ``text``, or None when it is no possible number."""
    if not text or len(text) > 40:
        return None
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    # "possible" alone lets through two-digit service codes; callers have real subscriber numbers
    national_digits = len(str(number.national_number))
    if (not phonenumbers.is_possible_number(number) or national_digits < MIN_NATIONAL_DIGITS
            or len(str(number.country_code)) + national_digits > MAX_E164_DIGITS):
        return None
    return number


# normalise and classify are pure and remembered: the service numbers come with every call, and
# callers call again; phonenumbers' parsing costs more than the rest of identifying a caller
@functools.lru_cache(maxsize=8192)
def normalise(text: str, default_region: str = "DE") -> str | None:
    """``text`` as E.164 (``+4915112345678``), or None when it is no possible number."""
    number = parse(text, default_region)
    if number is None:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@functools.lru_cache(maxsize=8192)
def classify(e164: str) -> CallerClass:
    """Mobile for mobile (and pager) ranges, landline for everything else, including unknown."""
    number = parse(e164, None)
    if number is not None and phonenumbers.number_type(number) in _MOBILE_TYPES:
        return CallerClass.MOBILE
    return CallerClass.LANDLINE


def national(e164: str) -> str:
    """The number as its owner would write it at home (``0151 12345678``), for showing back."""
    number = parse(e164, None)
    if number is None:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
