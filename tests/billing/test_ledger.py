"""Ledger invariants: balance == sum of ledger rows after any sequence, credits once per reference
(also 20 at once on the real thread pool), and debits that the balance does not cover change nothing."""

from __future__ import annotations

import queue
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
