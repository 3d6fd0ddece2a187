"""The store's async API on SQLite and PostgreSQL: accounts, top-ups with bonus, debits, reversals, lookups."""

from __future__ import annotations

import queue
import time
from decimal import Decimal

import pytest
from twisted.internet.task import Clock

from billing.profile import BillingProfile, TopupOption
from billing.store import CallRecord, NumberTaken, Store, StoreError
from tests.conftest import STORE_EPOCH_S, fired

DEMO = BillingProfile("demo", Decimal("1.99"), Decimal("2.49"),
                      topups=(TopupOption(1000, 100), TopupOption(2000, 300), TopupOption(5000, 1000)))
NUM = "+4915112345678"
OTHER = "+493012345679"


def balance(store, number=NUM, profile="demo"):
    account = fired(store.account(profile, number))
    return None if account is None else account.balance_cents


def assert_ledger_matches(store, profile="demo", number=NUM):
    account = fired(store.account(profile, number))
    assert fired(store.ledger_sum(account.id)) == account.balance_cents


def test_topup_credits_amount_and_bonus_as_separate_rows(store):
    """A 10.00 top-up on a profile with 10 -> 1 bonus gives 11.00 as a topup row and a bonus row."""
    result = fired(store.topup(DEMO, NUM, 1000, source="paypal", external_ref="PAY-1", actor="webhook"))
    assert result.applied
    assert result.account.balance_cents == 1100
    assert [(e.kind, e.amount_cents, e.balance_after_cents) for e in result.entries] == [
        ("topup", 1000, 1000), ("bonus", 100, 1100)]
    assert result.entries[0].at_ms == STORE_EPOCH_S * 1000
    assert balance(store) == 1100
    assert_ledger_matches(store)


def test_topup_without_listed_amount_has_no_bonus(store):
    """An amount not among the profile's top-up options is credited alone."""
    result = fired(store.topup(DEMO, NUM, 1234, source="manual", external_ref="m1", actor="op"))
    assert [e.kind for e in result.entries] == ["topup"]
    assert balance(store) == 1234


def test_repeated_external_ref_credits_once(store):
    """The same (source, external_ref) twice: the second is not applied and the balance is unchanged."""
    fired(store.topup(DEMO, NUM, 2000, source="paypal", external_ref="PAY-2", actor="webhook"))
    again = fired(store.topup(DEMO, NUM, 2000, source="paypal", external_ref="PAY-2", actor="webhook"))
    assert not again.applied and again.entries == ()
    assert again.account.balance_cents == 2300
    assert balance(store) == 2300
    assert len(fired(store.transactions("demo", NUM))) == 2


def test_same_ref_from_another_source_is_a_new_credit(store):
    """Uniqueness is per source: the same reference from klarna and paypal credits twice."""
    fired(store.credit("demo", NUM, 500, kind="api_credit", source="paypal", external_ref="X", actor="a"))
    r = fired(store.credit("demo", NUM, 500, kind="api_credit", source="klarna", external_ref="X", actor="a"))
    assert r.applied and balance(store) == 1000


def test_first_credit_creates_account_with_pin(store):
    """An account is created on its first credit, with a 6-digit PIN that finds it again."""
    assert fired(store.account("demo", NUM)) is None
    account = fired(store.topup(DEMO, NUM, 1000, source="manual", external_ref="a", actor="op")).account
    assert account.pin is not None and len(account.pin) == 6 and account.pin.isdigit()
    assert fired(store.account_by_pin("demo", account.pin)) == account
    assert fired(store.account_by_pin("other", account.pin)) is None


def test_debit_takes_when_covered(store):
    """A debit the balance covers is applied with its ledger row."""
    fired(store.credit("demo", NUM, 500, kind="manual", source="manual", external_ref="c", actor="op"))
    r = fired(store.debit("demo", NUM, 199, kind="call_debit", source="call", external_ref="s1:1",
                          actor="node", call_session_id="s1"))
    assert r.applied and r.reason is None
    assert r.account.balance_cents == 301
    assert r.entry.amount_cents == -199 and r.entry.balance_after_cents == 301
    assert r.entry.call_session_id == "s1"
    assert_ledger_matches(store)


def test_debit_larger_than_balance_changes_nothing(store):
    """A debit larger than the balance fails as insufficient and writes no row."""
    fired(store.credit("demo", NUM, 500, kind="manual", source="manual", external_ref="c", actor="op"))
    r = fired(store.debit("demo", NUM, 501, kind="call_debit", source="call", external_ref="s1:1", actor="n"))
    assert (r.applied, r.reason, r.account.balance_cents) == (False, "insufficient", 500)
    assert balance(store) == 500
    assert len(fired(store.transactions("demo", NUM))) == 1


def test_debit_exactly_the_balance_leaves_zero(store):
    """The balance may reach zero, not below."""
    fired(store.credit("demo", NUM, 500, kind="manual", source="manual", external_ref="c", actor="op"))
    assert fired(store.debit("demo", NUM, 500, kind="manual", source="manual", external_ref="d", actor="o")).applied
    assert balance(store) == 0


def test_debit_duplicate_and_no_account(store):
    """A repeated debit reference is a duplicate; a debit of an unknown caller is no_account."""
    fired(store.credit("demo", NUM, 500, kind="manual", source="manual", external_ref="c", actor="op"))
    fired(store.debit("demo", NUM, 100, kind="call_debit", source="call", external_ref="s:1", actor="n"))
    r = fired(store.debit("demo", NUM, 100, kind="call_debit", source="call", external_ref="s:1", actor="n"))
    assert (r.applied, r.reason, r.account.balance_cents) == (False, "duplicate", 400)
    r = fired(store.debit("demo", OTHER, 100, kind="call_debit", source="call", external_ref="s:2", actor="n"))
    assert (r.applied, r.reason, r.account) == (False, "no_account", None)


def test_bad_amounts_and_kinds_are_refused(store):
    """Zero or negative amounts and unknown kinds are refused before any SQL change."""
    with pytest.raises(StoreError):
        fired(store.credit("demo", NUM, 0, kind="manual", source="m", external_ref="a", actor="o"))
    with pytest.raises(StoreError):
        fired(store.credit("demo", NUM, 10, kind="call_debit", source="m", external_ref="a", actor="o"))
    with pytest.raises(StoreError):
        fired(store.debit("demo", NUM, -5, kind="manual", source="m", external_ref="b", actor="o"))
    assert balance(store) is None


def test_reverse_takes_what_balance_allows_and_records_shortfall(store):
    """A chargeback of 20.00 against a balance of 8.00 takes 8.00 and records a 12.00 shortfall, once."""
    fired(store.credit("demo", NUM, 800, kind="manual", source="manual", external_ref="c", actor="op"))
    r = fired(store.reverse("demo", NUM, 2000, source="paypal", external_ref="CB-1", actor="webhook"))
    assert (r.applied, r.taken_cents, r.shortfall_cents, r.account.balance_cents) == (True, 800, 1200, 0)
    assert r.entry.kind == "reversal" and r.entry.amount_cents == -800
    again = fired(store.reverse("demo", NUM, 2000, source="paypal", external_ref="CB-1", actor="webhook"))
    assert not again.applied
    shorts = fired(store.shortfalls("demo"))
    assert [(s.external_ref, s.amount_cents) for s in shorts] == [("CB-1", 1200)]
    assert_ledger_matches(store)


def test_reverse_on_zero_balance_is_all_shortfall(store):
    """A reversal on an empty balance writes only a shortfall, and is still applied once."""
    fired(store.credit("demo", NUM, 100, kind="manual", source="manual", external_ref="c", actor="op"))
    fired(store.debit("demo", NUM, 100, kind="manual", source="manual", external_ref="d", actor="op"))
    r = fired(store.reverse("demo", NUM, 300, source="klarna", external_ref="R", actor="w"))
    assert (r.applied, r.taken_cents, r.shortfall_cents) == (True, 0, 300)
    assert not fired(store.reverse("demo", NUM, 300, source="klarna", external_ref="R", actor="w")).applied
    assert balance(store) == 0


def test_balance_listeners_hear_every_committed_change(store, store_clock):
    """Listeners hear (profile, number, balance) after credits, debits and reversals, not after refusals."""
    heard = []
    store.on_balance_changed(lambda *a: heard.append(a))
    fired(store.topup(DEMO, NUM, 1000, source="p", external_ref="1", actor="w"))
    fired(store.topup(DEMO, NUM, 1000, source="p", external_ref="1", actor="w"))  # duplicate
    fired(store.debit("demo", NUM, 5000, kind="manual", source="m", external_ref="2", actor="o"))  # insufficient
    fired(store.debit("demo", NUM, 100, kind="manual", source="m", external_ref="3", actor="o"))
    fired(store.reverse("demo", NUM, 100, source="p", external_ref="4", actor="w"))
    assert heard == [("demo", NUM, 1100), ("demo", NUM, 1000), ("demo", NUM, 900)]


def test_listener_that_raises_does_not_break_others(store):
    """One failing listener is logged; the next still hears the news and the credit stands."""
    heard = []

    def bad(*a):
        raise RuntimeError("boom")
    store.on_balance_changed(bad)
    store.on_balance_changed(lambda *a: heard.append(a))
    fired(store.credit("demo", NUM, 100, kind="manual", source="m", external_ref="1", actor="o"))
    assert heard == [("demo", NUM, 100)]


def test_customers_and_transactions_filters(store, store_clock):
    """customers counts top-ups and their last time; transactions filter by number, kind and time, newest first."""
    fired(store.topup(DEMO, NUM, 1000, source="paypal", external_ref="a", actor="w"))
    store_clock.advance(60)
    fired(store.topup(DEMO, NUM, 2000, source="paypal", external_ref="b", actor="w"))
    store_clock.advance(60)
    fired(store.credit("demo", OTHER, 700, kind="manual", source="manual", external_ref="c", actor="op"))
    rows = fired(store.customers("demo"))
    assert [(c.number, c.balance_cents, c.topups, c.last_topup_ms) for c in rows] == [
        (NUM, 3400, 2, (STORE_EPOCH_S + 60) * 1000), (OTHER, 700, 0, None)]
    assert [c.number for c in fired(store.customers(number=NUM))] == [NUM]
    entries = fired(store.transactions("demo", NUM))
    assert [(e.kind, e.amount_cents) for e in entries] == [("bonus", 300), ("topup", 2000), ("bonus", 100),
                                                          ("topup", 1000)]
    assert [e.amount_cents for e in fired(store.transactions(kinds=["topup"]))] == [2000, 1000]
    since = fired(store.transactions(since_ms=(STORE_EPOCH_S + 60) * 1000, until_ms=(STORE_EPOCH_S + 120) * 1000))
    assert [e.amount_cents for e in since] == [300, 2000]
    assert len(fired(store.transactions(limit=1))) == 1


def _record(number, invite_s, **kw):
    base = dict(call_id=f"c{invite_s}", profile="demo", service_number="+493012345678", caller=number,
                identity_source="from", privacy=False, caller_class="mobile", agent_tried="sip:a@x",
                agent_answered="sip:a@x", invite_ms=invite_s * 1000, answer_ms=invite_s * 1000 + 5000,
                end_ms=invite_s * 1000 + 65000, end_reason="caller hung up", a_status=200, b_status=200,
                billed_s=60, charge_cents=249, call_session_id="s")
    base.update(kw)
    return CallRecord(**base)


def test_call_records_round_trip_newest_first(store):
    """Call records come back for their caller, newest first, with every field as written."""
    first = fired(store.add_call_record(_record(NUM, 100)))
    second = fired(store.add_call_record(_record(NUM, 200, privacy=True, identity_source="pai")))
    fired(store.add_call_record(_record(OTHER, 300)))
    assert first.id is not None
    assert fired(store.calls("demo", NUM)) == [second, first]


def test_renumber_moves_account_and_ledger_and_keeps_call_records(store):
    """Renumbering moves the balance and its ledger rows to the new number; a call record keeps the number the
    call came from (what the carrier presented), and the move is audited in the same transaction."""
    fired(store.topup(DEMO, NUM, 1000, source="p", external_ref="a", actor="w"))
    call = fired(store.add_call_record(_record(NUM, 100)))
    r = fired(store.renumber("demo", NUM, OTHER, actor="op", source="10.0.0.9"))
    assert (r.account.number, r.account.balance_cents, r.merged, r.ledger_rows, r.call_records) == (
        OTHER, 1100, False, 2, 1)
    assert fired(store.account("demo", NUM)) is None
    assert len(fired(store.transactions("demo", OTHER))) == 2
    assert fired(store.calls("demo", NUM)) == [call] and fired(store.calls("demo", OTHER)) == []
    from billing.db import audit
    [row] = fired(store.run(audit.entries, profile="demo"))
    assert (row.actor, row.source, row.action, row.subject, row.before, row.after) == (
        "op", "10.0.0.9", "renumber", NUM, f"{NUM}: 11.00", f"{OTHER}: 11.00")


def test_renumber_refuses_taken_number_unless_merge(store):
    """A new number with its own account is refused; with merge the balances and ledgers join."""
    fired(store.topup(DEMO, NUM, 1000, source="p", external_ref="a", actor="w"))
    fired(store.credit("demo", OTHER, 250, kind="manual", source="m", external_ref="b", actor="op"))
    with pytest.raises(NumberTaken):
        fired(store.renumber("demo", NUM, OTHER, actor="op"))
    assert balance(store, NUM) == 1100
    r = fired(store.renumber("demo", NUM, OTHER, merge=True, actor="op"))
    assert r.merged and r.account.balance_cents == 1350
    assert fired(store.account("demo", NUM)) is None
    assert_ledger_matches(store, number=OTHER)


def test_profiles_have_separate_balances(store):
    """The same caller under two profiles has two balances."""
    fired(store.credit("demo", NUM, 100, kind="manual", source="m", external_ref="a", actor="o"))
    fired(store.credit("other", NUM, 200, kind="manual", source="m", external_ref="b", actor="o"))
    assert (balance(store, NUM, "demo"), balance(store, NUM, "other")) == (100, 200)


def test_open_creates_sqlite_folder(tmp_path):
    """Store.open on a SQLite file in a missing folder creates the folder, and the file migrates."""
    from twisted.internet.task import Clock
    s = Store.open(f"sqlite:///{tmp_path}/a/b/prepaid.db", Clock(), inline=True)
    fired(s.upgrade())
    assert (tmp_path / "a" / "b" / "prepaid.db").exists()
    s.close()


def test_watcher_hears_changes_made_by_another_node(store, store_url, store_clock):
    """A change made through another Store on the same database is announced here within one interval,
    once; this node's own changes are not announced a second time."""
    other = Store.open(store_url, store_clock, node_id="other", inline=True)
    heard = []
    store.on_balance_changed(lambda *a: heard.append(a))
    watcher = store.watch_balances(interval_s=2.0, listen=False)
    try:
        fired(store.credit("demo", NUM, 100, kind="manual", source="m", external_ref="own", actor="o"))
        fired(other.topup(DEMO, OTHER, 1000, source="manual", external_ref="far", actor="op"))
        assert heard == [("demo", NUM, 100)]
        store_clock.advance(2)
        assert heard == [("demo", NUM, 100), ("demo", OTHER, 1100)]
        store_clock.advance(2)
        store_clock.advance(2)
        assert len(heard) == 2, "nothing new: nothing announced again"
        store_clock.advance(1)
        fired(other.debit("demo", NUM, 40, kind="manual", source="m", external_ref="far2", actor="op"))
        store_clock.advance(2)
        assert heard[-1] == ("demo", NUM, 60) and len(heard) == 3
    finally:
        watcher.stop()
        other.close()
    store_clock.advance(10)
    assert len(heard) == 3


@pytest.mark.parametrize("number", ["015112345678", "anonymous", "", "+0151123", "+49 151 1234"])
def test_accounts_are_only_made_for_e164_numbers(store, number):
    """A credit for a number that is not E.164 is refused and creates nothing (callers normalise first)."""
    with pytest.raises(StoreError):
        fired(store.credit("demo", number, 100, kind="manual", source="m", external_ref="x", actor="o"))
    assert fired(store.customers()) == []


class ThreadedClock(Clock):
    """A Clock that also takes calls from other threads (queued until :meth:`pump`)."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: queue.Queue = queue.Queue()

    def callFromThread(self, f, *args, **kwargs):
        self.queued.put((f, args, kwargs))

    def pump(self, until, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not until():
            remaining = deadline - time.monotonic()
            assert remaining > 0, "timed out waiting"
            try:
                f, args, kwargs = self.queued.get(timeout=min(0.1, remaining))
            except queue.Empty:
                continue
            f(*args, **kwargs)


def test_postgresql_notify_brings_other_nodes_changes_at_once(pg_schema_url_factory):
    """On PostgreSQL a change committed by another node arrives by NOTIFY without waiting for a poll,
    and this node's own change, heard already, is not announced a second time."""
    url = pg_schema_url_factory()
    clock = ThreadedClock()
    clock.advance(STORE_EPOCH_S)
    here = Store.open(url, clock, node_id="here", inline=True)
    fired(here.upgrade())
    there = Store.open(url, clock, node_id="there", inline=True)
    heard = []
    here.on_balance_changed(lambda *a: heard.append(a))
    watcher = here.watch_balances(interval_s=3600)  # the clock never gets there: only NOTIFY can tell
    try:
        assert watcher.listener.ready.wait(10)
        fired(there.topup(DEMO, NUM, 1000, source="p", external_ref="far", actor="w"))
        clock.pump(lambda: ("demo", NUM, 1100) in heard)
        delivered = watcher.listener.delivered
        fired(here.credit("demo", OTHER, 500, kind="manual", source="m", external_ref="own", actor="o"))
        clock.pump(lambda: watcher.listener.delivered > delivered and clock.queued.empty())
        clock.pump(lambda: True)
        assert heard.count(("demo", OTHER, 500)) == 1
        assert heard.count(("demo", NUM, 1100)) == 1
        assert heard == [("demo", NUM, 1100), ("demo", OTHER, 500)], "one committed state per transaction"
    finally:
        watcher.stop()
        here.close()
        there.close()
