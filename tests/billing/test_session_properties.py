"""Property tests of call sessions on the in-memory double and a Clock: whatever the timing, no money is
lost or created and no balance goes below zero."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from billing.profile import BillingProfile, CallerClass, Increment
from billing.rating import billed_s, charge_cents
from billing.session import CallBilling, NoObserver, State

from .test_session_harness import MemorySessionStore

NUMBER = "+4930999888"


class Quiet(NoObserver):
    def __init__(self):
        self.exhausted = False

    def session_exhausted(self, event):
        self.exhausted = True


@settings(max_examples=60, deadline=None)
@given(increment=st.sampled_from([Increment(60, 60), Increment(1, 1), Increment(30, 6)]),
       per_minute=st.decimals(min_value=Decimal("0.10"), max_value=Decimal("3.99"), places=2),
       balance=st.integers(0, 3000),
       calls=st.lists(st.tuples(st.integers(0, 120), st.integers(1, 900)), min_size=1, max_size=3),
       topups=st.lists(st.tuples(st.integers(0, 900), st.integers(1, 1000)), max_size=3))
def test_shared_balance_never_negative_and_money_adds_up(increment, per_minute, balance, calls, topups):
    """Calls of one caller (start, length), top-ups at random times: the balance stays >= 0 every second,
    each call is charged its billed time (capped at what it paid), and start + top-ups = balance + charges."""
    profile = BillingProfile("p", per_minute, per_minute, increment=increment)
    clock = Clock()
    store = MemorySessionStore()
    store.balances[("p", NUMBER)] = 0
    if balance:
        store.credit("p", NUMBER, balance, "seed")
    billing = CallBilling(store, clock, node_id="n", lease_s=60)
    live = {}
    opened = {}
    settled = []
    topped = 0
    for second in range(0, 1100):
        for i, (start, length) in enumerate(calls):
            if second == start:
                d = billing.open(profile, NUMBER, CallerClass.LANDLINE, f"c{i}", Quiet())
                d.addCallbacks(lambda s, i=i: live.__setitem__(i, s), lambda f: f.trap(Exception))
                if i in live:
                    live[i].start_charging()
                    opened[i] = live[i]
            s = live.get(i)
            if s is not None and (second == start + length or s.state is State.ENDED):
                out = []
                s.settle(None, "end").addCallback(out.append)
                settled.append((s, out[0]))
                del live[i]
        for at, cents in topups:
            if second == at:
                store.credit("p", NUMBER, cents, f"t{at}-{cents}")
                topped += cents
        assert store.balances[("p", NUMBER)] >= 0
        clock.advance(1)
    for s, settlement in settled:
        duration_s = -(-(settlement.settled_ms - s.start_ms) // 1000)
        billed = min(billed_s(s.tariff.increment, duration_s), s.paid_s)
        assert (settlement.billed_s, settlement.charge_cents) == (billed, charge_cents(s.tariff, billed))
        assert settlement.charge_cents + settlement.refund_cents == s.debited_cents
    charges = sum(settlement.charge_cents for _, settlement in settled)
    assert balance + topped == store.balances[("p", NUMBER)] + charges
    assert sum(e[3] for e in store.ledger) == store.balances[("p", NUMBER)]
