"""A first-time caller's free minutes through the call controller, on a Clock with fake legs and media and
billing on the in-memory session store: the offer is said instead of the tariff, the caller talks for
nothing until the free minutes end, hears that they are over and where to top up, then BYE to both."""

from __future__ import annotations

from decimal import Decimal

from b2bua.call import Call
from b2bua.callmedia import phrase_for
from b2bua.callports import Say
from b2bua.identity import CallerIdentity
from b2bua.routing import Router
from billing.profile import CallerClass, FirstCallerTariff

from .test_call import CALLER, FakeA, Profile, answer_agent, billing_profile, make_call, nothing_pending

FREE_FIVE = Profile("demo", billing_profile(first_caller=FirstCallerTariff(Decimal("0"), 300)))


def test_free_minutes_are_announced_talked_and_end_with_the_top_up_words():
    """No account: "Ihre ersten fünf Minuten sind kostenlos" (no tariff, no credit minutes), the agent is
    rung, 5 minutes free from answer, the warning 2 minutes before, then "free minutes over" + where to top
    up to both, BYE to both; the record bills 300 s for 0 cents and the second call is refused."""
    w = make_call(balance_cents=None, profile=FREE_FIVE)
    (offer,) = w.media.said
    assert offer.say is Say.MINUTES and (offer.offer_minutes, offer.offer_per_minute) == (5, Decimal("0"))
    assert offer.minutes is None and offer.per_minute is None
    assert phrase_for(offer, "de") == ["offer_first", "fuenf", "minuten", "offer_are_free"]
    assert phrase_for(offer, "en") == ["offer_first", "five", "minutes", "offer_are_free"]
    w.clock.advance(5)
    answer_agent(w)
    w.clock.advance(180)
    assert w.media.said[-1].say is Say.WARNING
    w.clock.advance(119)
    assert w.a.sent == [200] and w.b().sent == []           # still talking at 4:59
    w.clock.advance(1)
    final = w.media.said[-1]
    assert final.say is Say.FREE_MINUTES_OVER and final.to_caller and final.to_agent
    assert phrase_for(final, "de") == ["free_minutes_over", "no_credit"]
    w.clock.advance(5)
    assert w.a.sent == [200, "BYE"] and w.b().sent == ["BYE"]
    nothing_pending(w)
    record = w.records[0]
    assert (record.end_reason, record.billed_s, record.charge_cents) == ("credit_exhausted", 300, 0)
    assert w.store.balances[("demo", CALLER)] == 0 and ("demo", CALLER) in w.store.first_callers

    second = FakeA()
    call = Call(call_id="c2", reactor=w.clock, a=second, route=Router([FREE_FIVE], "DE").route("+493012345678"),
                identity=CallerIdentity(CALLER, "from", False, CallerClass.LANDLINE), dialer=None, media=w.media,
                billing=w.billing, record=w.records.append, max_duration_s=3600)
    call.start()
    assert w.media.said[-1].say is Say.NO_CREDIT
    w.clock.advance(5)
    assert second.sent == [200, "BYE"] and w.records[-1].end_reason == "no_credit"


def test_a_discount_is_announced_with_its_price_and_the_credit_minutes():
    """0.99 for the first 5 minutes, 10.00 of credit: the offer with its price replaces the tariff, then the
    minutes the credit buys (5 at 0.99 + 4 at 1.20 = 9.75; a tenth would make 10.95)."""
    cheap = Profile("demo", billing_profile(first_caller=FirstCallerTariff(Decimal("0.99"), 300)))
    w = make_call(1000, profile=cheap)
    (offer,) = w.media.said
    assert (offer.offer_minutes, offer.offer_per_minute, offer.minutes) == (5, Decimal("0.99"), 9)
    assert phrase_for(offer, "en")[:7] == ["offer_first", "five", "minutes", "offer_cost_only", "ninety", "nine",
                                           "cents"]


def test_a_one_minute_free_offer_is_announced():
    """A 60 s free offer was not announced (the tariff was said instead): now "Ihre erste Minute ist
    kostenlos", and the caller talks for a minute."""
    one = Profile("demo", billing_profile(first_caller=FirstCallerTariff(Decimal("0"), 60)))
    w = make_call(balance_cents=None, profile=one)
    (offer,) = w.media.said
    assert (offer.offer_minutes, offer.per_minute) == (1, None)
    assert phrase_for(offer, "de") == ["offer_first_minute", "offer_is_free"]
