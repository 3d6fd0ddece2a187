"""The first-caller offer: free minutes without credit or account, a discount that needs credit, its date
window, and the list of who used it; on plain values and on every SessionStore (the in-memory double,
SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from twisted.python.failure import Failure

from b2bua.node.config import parse_config
from b2bua.node.schema import ConfigInvalid

from billing.profile import BillingProfile, CallerClass, FirstCallerTariff, Increment, offer_window_ms
from billing.rating import Tariff, affordable_s, can_start, charge_cents, minutes_callable
from billing.session import Refused

from .test_session import NUMBER, Controller, advance, h, make_billing, result  # noqa: F401  (h: the fixture)

FREE = FirstCallerTariff(Decimal("0"), 300)
FREE_FIVE = BillingProfile("free", Decimal("1.99"), Decimal("2.49"), first_caller=FREE)
CHEAP = BillingProfile("cheap", Decimal("1.99"), Decimal("2.49"),
                       first_caller=FirstCallerTariff(Decimal("0.99"), 300))


def try_open(h, billing, profile, call_id="c1"):
    """Open a session: (session, controller), or the Refused."""
    controller = Controller(h.clock)
    d = billing.open(profile, NUMBER, CallerClass.LANDLINE, call_id, controller)
    h.flush()
    out = []
    d.addBoth(out.append)
    assert out, "open did not answer"
    if isinstance(out[0], Failure):
        return out[0].value, controller
    return out[0], controller


def talk_to_the_end(h, session, controller, seconds):
    """Charge from 0, run the clock ``seconds``, settle there: (what Exhausted said of free minutes, settlement)."""
    session.start_charging(0)
    h.flush()
    exhausted = []
    controller.session_exhausted = exhausted.append
    advance(h, seconds)
    settlement = result(session.settle(seconds * 1000, "credit_exhausted"))
    h.flush()
    return [e.free_minutes_over for e in exhausted], settlement


def on_list(h, profile) -> bool:
    """Whether NUMBER is on the profile's first-caller list (the store's list, or the double's set)."""
    if hasattr(h, "db"):
        page = result(h.db.first_callers(profile.name, number=NUMBER))
        return page.total == 1
    return (profile.name, NUMBER) in h.store.first_callers


# -- plain values --------------------------------------------------------------------------------------

def test_free_minutes_are_affordable_with_nothing_and_nothing_else_is():
    """A free 5-minute offer at 60/60: 0 cents reach 300 s and start a call; the sixth minute costs 1.99;
    the same tariff without the offer starts nothing on 0 cents (even a tariff of 0, as before)."""
    offer = Tariff(Decimal("1.99"), Increment(60, 60), first_caller=FREE)
    assert affordable_s(offer, 0) == 300 and can_start(offer, 0) and minutes_callable(offer, 0) == 5
    assert charge_cents(offer, 300) == 0 and charge_cents(offer, 360) == 199
    assert affordable_s(offer, 199) == 360
    assert not can_start(Tariff(Decimal("1.99"), Increment(60, 60)), 0)
    assert affordable_s(Tariff(Decimal("0"), Increment(60, 60)), 0) == 0
    discount = Tariff(Decimal("1.99"), Increment(60, 60), first_caller=FirstCallerTariff(Decimal("0.99"), 300))
    assert not can_start(discount, 0) and affordable_s(discount, 99) == 60


def test_the_offers_window_is_whole_days_in_the_profiles_zone():
    """1-31 December 2026 in Berlin: from 23:00 UTC on 30 November to 23:00 UTC on 31 December."""
    start, end = offer_window_ms(datetime.date(2026, 12, 1), datetime.date(2026, 12, 31))
    utc = datetime.timezone.utc
    assert start == int(datetime.datetime(2026, 11, 30, 23, tzinfo=utc).timestamp() * 1000)
    assert end == int(datetime.datetime(2026, 12, 31, 23, tzinfo=utc).timestamp() * 1000)
    offer = FirstCallerTariff(Decimal("0"), 300, start, end)
    assert not offer.offered_at(start - 1) and offer.offered_at(start) and offer.offered_at(end - 1)
    assert not offer.offered_at(end)
    assert offer_window_ms(None, None) == (None, None) and FirstCallerTariff(Decimal("0"), 300).offered_at(0)


# -- on every store ----------------------------------------------------------------------------------------

def test_a_first_time_caller_without_account_talks_free_then_is_listed_and_refused_next_time(h):
    """No account, no credit: the first call gets 5 free minutes, ends there (free_minutes_over), costs
    nothing; the caller is on the list; the second call is refused for no credit (the account exists now)."""
    billing = make_billing(h)
    session, controller = try_open(h, billing, FREE_FIVE)
    assert session.first_call and session.minutes == 5 and session.balance_cents == 0
    free_over, settlement = talk_to_the_end(h, session, controller, 300)
    assert free_over == [True]
    assert (settlement.billed_s, settlement.charge_cents, settlement.refund_cents) == (300, 0, 0)
    assert h.balance(FREE_FIVE, NUMBER) == 0 and h.ledger_total(FREE_FIVE, NUMBER) == 0
    assert on_list(h, FREE_FIVE)
    refused, _ = try_open(h, billing, FREE_FIVE, call_id="c2")
    assert isinstance(refused, Refused) and refused.reason == "balance too low"


def test_free_minutes_then_the_callers_credit(h):
    """With 1.99 of credit the free 5 minutes are followed by a paid sixth; the end is not 'free minutes over'."""
    h.give(FREE_FIVE, NUMBER, 199)
    billing = make_billing(h)
    session, controller = try_open(h, billing, FREE_FIVE)
    assert session.minutes == 6
    free_over, settlement = talk_to_the_end(h, session, controller, 360)
    assert free_over == [False] and settlement.charge_cents == 199 and h.balance(FREE_FIVE, NUMBER) == 0


def test_a_call_that_never_started_charging_does_not_use_the_offer(h):
    """Refused after opening (no agent answered): the caller is not on the list and the next call gets the
    offer again."""
    billing = make_billing(h)
    session, _ = try_open(h, billing, FREE_FIVE)
    assert session.first_call
    result(session.settle(5_000, "no_agent"))
    h.flush()
    assert not on_list(h, FREE_FIVE)
    again, _ = try_open(h, billing, FREE_FIVE, call_id="c2")
    assert again.first_call and again.minutes == 5
    result(again.settle(6_000, "caller_hangup"))


def test_outside_the_window_the_offer_is_not_given_nor_used(h):
    """An offer that starts tomorrow: a caller without account is refused ("no account") and not listed;
    one with credit pays the normal tariff and keeps the offer for later."""
    tomorrow = FirstCallerTariff(Decimal("0"), 300, from_ms=86_400_000)
    later = BillingProfile("later", Decimal("1.99"), Decimal("2.49"), first_caller=tomorrow)
    billing = make_billing(h)
    refused, _ = try_open(h, billing, later)
    assert isinstance(refused, Refused) and refused.reason == "no account"
    h.give(later, NUMBER, 500)
    session, _ = try_open(h, billing, later, call_id="c2")
    assert not session.first_call and session.minutes == 2
    result(session.settle(0, "caller_hangup"))
    h.flush()
    assert not on_list(h, later)


def test_a_discounted_first_call_needs_credit(h):
    """0.99 for the first 5 minutes: no account is refused "no account"; with 0.99 the caller gets one
    discounted minute and pays 0.99 for it."""
    billing = make_billing(h)
    refused, _ = try_open(h, billing, CHEAP)
    assert isinstance(refused, Refused) and refused.reason == "no account"
    assert not on_list(h, CHEAP)
    h.give(CHEAP, NUMBER, 99)
    session, controller = try_open(h, billing, CHEAP, call_id="c2")
    assert session.first_call and session.minutes == 1
    _, settlement = talk_to_the_end(h, session, controller, 60)
    assert settlement.charge_cents == 99 and h.balance(CHEAP, NUMBER) == 0 and on_list(h, CHEAP)


def test_the_config_reads_the_offers_days_and_refuses_an_upside_down_window():
    """`first_caller_from`/`first_caller_until` as TOML dates become the Berlin window; until before from
    is reported with its key."""
    text = open("conf/prepaid.toml").read().replace(
        '# first_caller_per_minute = "0"', 'first_caller_per_minute = "0"').replace(
        "# first_caller_from = 2026-12-01", "first_caller_from = 2026-12-01").replace(
        "# first_caller_until = 2026-12-31", "first_caller_until = 2026-12-31")
    offer = parse_config(text, "p.toml").profiles["demo"].billing.first_caller
    assert (offer.from_ms, offer.until_ms) == offer_window_ms(datetime.date(2026, 12, 1), datetime.date(2026, 12, 31))
    with pytest.raises(ConfigInvalid) as bad:
        parse_config(text.replace("first_caller_until = 2026-12-31", "first_caller_until = 2026-11-30"), "p.toml")
    assert "p.toml:profiles.demo.first_caller_until: 2026-11-30 is before first_caller_from" in str(bad.value)
