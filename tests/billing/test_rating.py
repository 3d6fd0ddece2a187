"""The rater: exact charges, increments, and the promises made from a balance."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.profile import BillingProfile, CallerClass, FirstCallerTariff, Increment
from billing.rating import (
    Tariff, affordable_s, billed_s, boundary_at_or_before, call_charge_cents, can_start,
    charge_cents, minutes_callable, next_debit_cents, reservation_target_s, tariff_for,
)

increments = st.sampled_from([Increment(60, 60), Increment(1, 1), Increment(30, 6),
                              Increment(30, 30), Increment(120, 60), Increment(45, 30)])
per_minutes = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9.99"), places=2)
first_callers = st.one_of(st.none(), st.builds(
    FirstCallerTariff, per_minute=st.decimals(min_value=Decimal("0"), max_value=Decimal("4.99"), places=2),
    period_s=st.integers(0, 900)))
tariffs = st.builds(Tariff, per_minute=per_minutes, increment=increments,
                    connect_charge_cents=st.integers(0, 99), first_caller=first_callers)


def test_60_60_bills_whole_minutes_at_the_tariff():
    """1.99/min at 60/60: 1 s and 60 s cost one minute, 61 s two minutes, 0 s nothing."""
    t = Tariff(Decimal("1.99"), Increment(60, 60))
    assert [call_charge_cents(t, d) for d in (0, 1, 60, 61, 120, 121)] == [0, 199, 199, 398, 398, 597]


def test_1_1_rounds_once_half_up_from_the_whole():
    """1/1 at 1.99/min: 1 s is 3.3166 cents -> 3; 3 s is 9.95 -> 10 (half-up); the whole, not a sum of rounded seconds."""
    t = Tariff(Decimal("1.99"), Increment(1, 1))
    assert call_charge_cents(t, 1) == 3
    assert call_charge_cents(t, 3) == 10
    assert call_charge_cents(t, 90) == 299  # 298.5 -> 299
    assert call_charge_cents(t, 90) != 90 * call_charge_cents(t, 1)


def test_30_6_increments_and_connect_charge():
    """30/6: 31 s is billed 36 s; the connect charge is added once to a call that has billed time."""
    t = Tariff(Decimal("0.60"), Increment(30, 6), connect_charge_cents=15)
    assert billed_s(t.increment, 31) == 36
    assert billed_s(t.increment, 29) == 30
    assert call_charge_cents(t, 31) == 36 + 15
    assert call_charge_cents(t, 0) == 0


def test_first_caller_tariff_applies_for_its_period_then_the_normal_one():
    """Free first 5 minutes then 2.00/min: 7 minutes cost 2 minutes; computed from the whole call."""
    t = Tariff(Decimal("2.00"), Increment(60, 60), first_caller=FirstCallerTariff(Decimal("0"), 300))
    assert call_charge_cents(t, 300) == 0
    assert call_charge_cents(t, 420) == 400
    half = Tariff(Decimal("1.99"), Increment(1, 1), first_caller=FirstCallerTariff(Decimal("0.99"), 61))
    # 61 s at 0.99 + 1 s at 1.99 = (60.39 + 1.99) / 60 * 100 = 103.966.. -> 104
    assert call_charge_cents(half, 62) == 104


def test_tariff_for_picks_class_and_first_caller():
    """A mobile caller gets the mobile tariff; the first-caller tariff only with first_call=True."""
    fc = FirstCallerTariff(Decimal("0.50"), 120)
    p = BillingProfile("demo", Decimal("1.99"), Decimal("2.49"), first_caller=fc, connect_charge_cents=5)
    assert tariff_for(p, CallerClass.MOBILE, first_call=False) == Tariff(Decimal("2.49"), Increment(60, 60), 5, None)
    assert tariff_for(p, CallerClass.LANDLINE, first_call=True).first_caller == fc


def test_minutes_callable_and_affordable_examples():
    """10.00 EUR at 1.99/min buys 5 minutes (9.95); 1.98 buys nothing and cannot start."""
    t = Tariff(Decimal("1.99"), Increment(60, 60))
    assert minutes_callable(t, 1000) == 5
    assert affordable_s(t, 1000) == 300
    assert not can_start(t, 198)
    assert can_start(t, 199)
    per_s = Tariff(Decimal("1.99"), Increment(1, 1))
    assert affordable_s(per_s, 100) == 30  # 30 s = 99.5 -> 100 cents; 31 s = 102.8
    assert minutes_callable(per_s, 100) == 0


def test_free_tariff_is_capped_by_max_s():
    """A tariff of 0 would buy forever: the answer is capped at max_s."""
    t = Tariff(Decimal("0"), Increment(60, 60))
    assert affordable_s(t, 1, max_s=3600) == 3600


def test_negative_or_zero_increments_are_refused():
    """A tariff with a 0 s increment is a config error, not an endless loop."""
    with pytest.raises(ValueError):
        Tariff(Decimal("1"), Increment(0, 60))


@given(tariffs, st.integers(0, 20000), st.integers(0, 600))
def test_charges_never_decrease_with_duration(tariff, d, more):
    """A longer call never costs less."""
    assert call_charge_cents(tariff, d + more) >= call_charge_cents(tariff, d)


@given(tariffs, st.integers(0, 7200), st.integers(1, 120), st.integers(0, 30))
def test_tick_debits_sum_to_the_whole_charge(tariff, duration, ahead, lead):
    """Debiting ahead in chunks (next boundary >= paid + ahead) then settling sums to the whole call's charge."""
    inc = tariff.increment
    paid, debited, ticks = 0, 0, []
    while paid < duration or (duration > 0 and paid == 0):
        target = reservation_target_s(inc, paid, ahead)
        d = next_debit_cents(tariff, debited, target)
        assert d >= 0
        ticks.append(d)
        debited += d
        paid = target
    final = call_charge_cents(tariff, duration)
    refund = debited - final
    assert refund >= 0
    assert sum(ticks) - refund == final
    assert debited == charge_cents(tariff, paid)


@given(increments, st.integers(1, 20000))
def test_60_60_bills_whole_minutes(inc, d):
    """At 60/60 the billed time is the duration rounded up to whole minutes; every billed value is a boundary."""
    b = billed_s(inc, d)
    if inc == Increment(60, 60):
        assert b == -(-d // 60) * 60
    assert b >= d
    assert boundary_at_or_before(inc, b) == b
    assert b - d < max(inc.first_s, inc.next_s)


@settings(max_examples=300)
@given(tariffs, st.integers(0, 100000))
def test_a_balance_is_never_exceeded(tariff, balance):
    """The boundary a balance reaches costs at most the balance, and the next boundary costs more (the last one is found)."""
    end = affordable_s(tariff, balance)
    assert charge_cents(tariff, end) <= balance
    nxt = billed_s(tariff.increment, end + 1)
    if nxt <= 86400 and balance > 0:  # a zero balance starts no call, even a free one
        assert charge_cents(tariff, nxt) > balance


@settings(max_examples=300)
@given(tariffs, st.integers(0, 100000))
def test_minutes_announced_are_minutes_actually_callable(tariff, balance):
    """A call of the announced whole minutes costs no more than the balance; one more minute may not fit."""
    m = minutes_callable(tariff, balance)
    assert call_charge_cents(tariff, m * 60) <= balance
    assert m * 60 <= affordable_s(tariff, balance) < (m + 1) * 60
