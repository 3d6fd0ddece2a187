"""Ledger invariants: balance == sum of ledger rows after any sequence, credits once per reference
(also 20 at once on the real thread pool), and debits that the balance does not cover change nothing."""

from __future__ import annotations

import queue
import time
from decimal import Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.db import model
from billing.profile import BillingProfile, TopupOption
from billing.store import Store
from tests.conftest import fired

NUM = "+4915112345678"


class PumpReactor:
    """Just enough reactor for the store's thread pool: callFromThread queues, :meth:`wait` runs the queue."""

    def __init__(self) -> None:
        self.calls: queue.Queue = queue.Queue()

    def seconds(self) -> float:
        return 1_793_491_200.0

    def callFromThread(self, f, *args, **kwargs):
        self.calls.put((f, args, kwargs))

    def wait(self, d, timeout_s: float = 30.0):
        results: list = []
        d.addBoth(results.append)
        deadline = time.monotonic() + timeout_s
        while not results:
            f, args, kwargs = self.calls.get(timeout=max(0.01, deadline - time.monotonic()))
            f(*args, **kwargs)
        return results[0]


operations = st.lists(st.tuples(st.sampled_from(["credit", "debit", "reverse", "dup"]),
                                st.integers(min_value=1, max_value=5000)), max_size=25)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_balance_equals_ledger_sum_after_any_sequence(store, ops):
    """After any mix of credits, debits, reversals and repeats the balance is >= 0 and equals its ledger sum."""
    prefix = str(time.monotonic_ns())  # one store for all examples: fresh references per example
    expected = fired(store.account("demo", NUM))
    expected = expected.balance_cents if expected else 0
    for i, (op, amount) in enumerate(ops):
        ref = f"{prefix}:{i}"
        if op == "credit":
            fired(store.credit("demo", NUM, amount, kind="manual", source="m", external_ref=ref, actor="t"))
            expected += amount
        elif op == "dup":
            fired(store.credit("demo", NUM, amount, kind="manual", source="m", external_ref=ref, actor="t"))
            fired(store.credit("demo", NUM, amount, kind="manual", source="m", external_ref=ref, actor="t"))
            expected += amount
        elif op == "debit":
            r = fired(store.debit("demo", NUM, amount, kind="call_debit", source="call", external_ref=ref, actor="t"))
            if expected >= amount:
                assert r.applied
                expected -= amount
            else:
                assert not r.applied and r.reason in ("insufficient", "no_account")
        else:
            r = fired(store.reverse("demo", NUM, amount, source="p", external_ref=ref, actor="t"))
            if r.applied:
                assert r.taken_cents == min(expected, amount)
                expected -= r.taken_cents
    account = fired(store.account("demo", NUM))
    if account is not None:
        assert account.balance_cents == expected >= 0
        assert fired(store.ledger_sum(account.id)) == account.balance_cents


def test_twenty_concurrent_repeats_credit_once(store_url):
    """20 top-ups with one (source, external_ref) racing on the thread pool: one applies, the balance is one credit."""
    reactor = PumpReactor()
    s = Store.open(store_url, reactor, threads=10)
    try:
        reactor.wait(s.upgrade())
        # the account exists first, and also not: half the race is for its creation
        ds = [s.credit("demo", NUM, 700, kind="api_credit", source="api:k1", external_ref="same", actor="t")
              for _ in range(20)]
        from twisted.internet.defer import gatherResults
        results = reactor.wait(gatherResults(ds))
        assert sum(r.applied for r in results) == 1
        account = reactor.wait(s.account("demo", NUM))
        assert account.balance_cents == 700
        assert reactor.wait(s.ledger_sum(account.id)) == 700
        assert len(reactor.wait(s.transactions("demo", NUM))) == 1
    finally:
        s.close()


def test_concurrent_debits_never_overdraw(store_url):
    """40 debits of 1.00 racing against 25.00 on the thread pool: exactly 25 apply, the balance ends at 0."""
    reactor = PumpReactor()
    s = Store.open(store_url, reactor, threads=8)
    try:
        reactor.wait(s.upgrade())
        reactor.wait(s.credit("demo", NUM, 2500, kind="manual", source="m", external_ref="c", actor="t"))
        from twisted.internet.defer import gatherResults
        ds = [s.debit("demo", NUM, 100, kind="call_debit", source="call", external_ref=f"d{i}", actor="t")
              for i in range(40)]
        results = reactor.wait(gatherResults(ds))
        assert sum(r.applied for r in results) == 25
        assert {r.reason for r in results if not r.applied} == {"insufficient"}
        account = reactor.wait(s.account("demo", NUM))
        assert account.balance_cents == 0 == reactor.wait(s.ledger_sum(account.id))
    finally:
        s.close()


def test_twenty_concurrent_first_credits_open_one_account(store_url):
    """20 different credits racing to a caller with no account yet: one account is made, all 20 apply."""
    reactor = PumpReactor()
    s = Store.open(store_url, reactor, threads=10)
    try:
        reactor.wait(s.upgrade())
        from twisted.internet.defer import gatherResults
        ds = [s.credit("demo", NUM, 100 + i, kind="api_credit", source="api:k1", external_ref=f"r{i}", actor="t")
              for i in range(20)]
        results = reactor.wait(gatherResults(ds))
        assert all(r.applied for r in results)
        assert len({r.account.id for r in results}) == 1
        account = reactor.wait(s.account("demo", NUM))
        assert account.balance_cents == sum(100 + i for i in range(20)) == reactor.wait(s.ledger_sum(account.id))
        assert len(reactor.wait(s.customers())) == 1
    finally:
        s.close()


BONUS_PROFILE = BillingProfile("demo", Decimal("1.99"), Decimal("2.49"), topups=(TopupOption(1000, 100),))


def _payment_row(conn, reference: str = "ref-1") -> int:
    """A ``payments`` row (a PayPal order of 10.00 EUR), as the top-up page makes it; its id."""
    return conn.execute(sa.insert(model.payments).values(
        method="paypal", profile="demo", number=NUM, amount_cents=1000, bonus_cents=100, currency="EUR",
        reference=reference, provider_ref=f"ORDER-{reference}", state="redirected", created_ms=0,
        updated_ms=0).returning(model.payments.c.id)).scalar_one()


def test_a_payment_is_credited_once_whatever_id_names_it(store):
    """A second capture id (another external_ref) for one payment credits nothing: one top-up, one bonus row."""
    payment_id = fired(store.run(_payment_row))
    first = fired(store.topup(BONUS_PROFILE, NUM, 1000, source="paypal", external_ref="CAP-1", actor="w",
                              payment_id=payment_id))
    second = fired(store.topup(BONUS_PROFILE, NUM, 1000, source="paypal", external_ref="CAP-2", actor="w",
                               payment_id=payment_id))
    assert first.applied and not second.applied and second.entries == ()
    assert second.account.balance_cents == 1100
    rows = fired(store.transactions("demo", NUM))
    assert sorted((r.kind, r.amount_cents, r.external_ref, r.payment_id) for r in rows) == [
        ("bonus", 100, "CAP-1#bonus", payment_id), ("topup", 1000, "CAP-1", payment_id)]
    # another payment of the same caller is credited as before
    other = fired(store.run(_payment_row, "ref-2"))
    assert fired(store.topup(BONUS_PROFILE, NUM, 1000, source="paypal", external_ref="CAP-3", actor="w",
                             payment_id=other)).applied
    account = fired(store.account("demo", NUM))
    assert account.balance_cents == 2200 == fired(store.ledger_sum(account.id))


def test_twenty_concurrent_credits_of_one_payment_under_twenty_ids_apply_once(store_url):
    """20 top-ups of one payment, each with its own capture id, racing on the thread pool: the
    database's UNIQUE (payment_id, kind) lets one apply; the balance is one payment and its bonus."""
    reactor = PumpReactor()
    s = Store.open(store_url, reactor, threads=10)
    try:
        reactor.wait(s.upgrade())
        payment_id = reactor.wait(s.run(_payment_row))
        from twisted.internet.defer import gatherResults
        ds = [s.topup(BONUS_PROFILE, NUM, 1000, source="paypal", external_ref=f"CAP-{i}", actor="w",
                      payment_id=payment_id) for i in range(20)]
        results = reactor.wait(gatherResults(ds))
        assert sum(r.applied for r in results) == 1
        account = reactor.wait(s.account("demo", NUM))
        assert account.balance_cents == 1100 == reactor.wait(s.ledger_sum(account.id))
        assert len(reactor.wait(s.transactions("demo", NUM))) == 2
    finally:
        s.close()


def test_a_refund_notified_twice_debits_once_two_partial_refunds_twice(store):
    """The same refund (source, external_ref) twice takes once; two distinct partial refunds take twice."""
    fired(store.topup(BONUS_PROFILE, NUM, 1000, source="paypal", external_ref="CAP-1", actor="w"))
    assert fired(store.reverse("demo", NUM, 300, source="paypal", external_ref="refund:R1", actor="w")).applied
    again = fired(store.reverse("demo", NUM, 300, source="paypal", external_ref="refund:R1", actor="w"))
    assert not again.applied and again.taken_cents == 0
    assert fired(store.reverse("demo", NUM, 200, source="paypal", external_ref="refund:R2", actor="w")).applied
    account = fired(store.account("demo", NUM))
    assert account.balance_cents == 600 == fired(store.ledger_sum(account.id))
    reversals = fired(store.transactions("demo", NUM, kinds=("reversal",)))
    assert sorted(r.amount_cents for r in reversals) == [-300, -200]
