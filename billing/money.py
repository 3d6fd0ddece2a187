"""Amounts of money as text ("12.50") and as integer cents (1250), exactly.

Operators and web pages write amounts in the currency; everything inside
billing is integer cents. :func:`parse_cents` takes a decimal with at most two
places (a comma works as the decimal point too) and refuses everything else;
:func:`format_cents` gives the text back. No floats anywhere.
"""

from __future__ import annotations

import re
from decimal import Decimal

_AMOUNT = re.compile(r"^(?P<sign>[-+]?)(?P<units>\d{1,12})(?:[.,](?P<frac>\d{1,2}))?$")


class BadAmount(ValueError):
    """Text that is no amount of money (with a reason fit for an error message)."""


def parse_cents(text: str, *, allow_negative: bool = False) -> int:
    """``"12.50"`` -> 1250, ``"10"`` -> 1000, ``"0,5"`` -> 50; raises :class:`BadAmount`."""
    match = _AMOUNT.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise BadAmount(f"not an amount of money (like 10 or 12.50): {text!r}")
    cents = int(match["units"]) * 100 + int((match["frac"] or "0").ljust(2, "0"))
    if match["sign"] == "-":
        if not allow_negative:
            raise BadAmount(f"the amount must not be negative: {text!r}")
        cents = -cents
    return cents


def format_cents(cents: int) -> str:
    """1250 -> ``"12.50"``, -5 -> ``"-0.05"``."""
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{units}.{rest:02d}"


def decimal_to_cents(amount: Decimal) -> int:
    """An exact Decimal amount of the currency in cents; raises :class:`BadAmount` below a cent."""
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise BadAmount(f"{amount} has fractions of a cent")
    return int(cents)
