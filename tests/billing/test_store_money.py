"""Amounts as text <-> integer cents, exactly (billing.money): what operators and pages type in."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.money import BadAmount, decimal_to_cents, format_cents, parse_cents


@pytest.mark.parametrize("text, cents", [
    ("10", 1000), ("12.50", 1250), ("12.5", 1250), ("0,5", 50), ("0.01", 1), (" 7 ", 700), ("+3.10", 310),
    ("1999.99", 199999),
])
def test_parse_cents_accepts_usual_forms(text, cents):
    """Whole units, one or two decimal places, a comma as decimal point: exact cents."""
    assert parse_cents(text) == cents


@pytest.mark.parametrize("text", ["", "abc", "1.234", "1e3", "NaN", "inf", "1.", ".5", "1 000", "--1", "10 EUR"])
def test_parse_cents_refuses_everything_else(text):
    """Text that is no amount (or has fractions of a cent) raises BadAmount, never a float guess."""
    with pytest.raises(BadAmount):
        parse_cents(text)


def test_negative_only_when_allowed():
    """A negative amount is refused unless asked for."""
    with pytest.raises(BadAmount):
        parse_cents("-1.00")
    assert parse_cents("-1.05", allow_negative=True) == -105


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_format_then_parse_round_trips(cents):
    """format_cents and parse_cents are inverse for every amount."""
    assert parse_cents(format_cents(cents), allow_negative=True) == cents


def test_format_cents_examples():
    """Two decimal places always, a sign for negatives."""
    assert [format_cents(c) for c in (0, 5, 100, 1250, -5, -100001)] == [
        "0.00", "0.05", "1.00", "12.50", "-0.05", "-1000.01"]


def test_decimal_to_cents_is_exact():
    """A Decimal with whole cents converts exactly; a fraction of a cent is refused."""
    assert decimal_to_cents(Decimal("0.35")) == 35
    with pytest.raises(BadAmount):
        decimal_to_cents(Decimal("0.355"))
