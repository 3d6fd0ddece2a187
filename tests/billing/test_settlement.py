"""The monthly settlement: top-ups by method, bonuses, call revenue, fees rounded once, net payout,
and totals that reconcile with the ledger to the cent (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import random
from decimal import Decimal

import pytest
import sqlalchemy as sa

from billing.db import model
from billing.profile import BillingProfile, Fees, TopupOption
from billing.settlement import build_statement, month_bounds_ms, to_csv, to_json, to_table
from tests.conftest import fired

FEES = Fees(topup_percent=Decimal("5"), per_transaction_cents=35, platform_per_minute=Decimal("0.05"))
DEMO = BillingProfile("demo", Decimal("1.99"), Decimal("2.49"), topups=(TopupOption(1000, 100), TopupOption(2000, 300)),
                      fees=FEES, provider="Demo GmbH")
LATE = BillingProfile("late", Decimal("0.99"), Decimal("0.99"), fees=FEES, provider="Demo GmbH")
NUM, NUM2 = "+4915112345678", "+493012345679"
DAY_S = 86_400


def settled_session(store, profile, number, session_id, billed_s, settled_ms):
    """A settled call_sessions row (as the sessions part writes it), for the billed minutes."""
    def thd(conn):
        account_id = conn.execute(sa.select(model.accounts.c.id).where(
            model.accounts.c.profile == profile, model.accounts.c.number == number)).scalar_one()
        conn.execute(sa.insert(model.call_sessions).values(
            id=session_id, account_id=account_id, profile=profile, call_id=f"call-{session_id}", node_id="n",
            state="settled", caller_class="mobile", per_minute="2.49", first_s=60, next_s=60, opened_ms=settled_ms,
            lease_until_ms=settled_ms, billed_s=billed_s, settled_ms=settled_ms, end_reason="bye"))
    fired(store.run(thd))


def test_statement_figures_by_hand(store, store_clock):
    """A month with known activity gives the hand-computed lines, fees (each rounded once) and net."""
    store_clock.advance(-DAY_S)  # 31 October: not in November
    fired(store.topup(DEMO, NUM, 2000, source="paypal", external_ref="oct", actor="w"))
    store_clock.advance(DAY_S + 3600)
    fired(store.topup(DEMO, NUM, 1000, source="paypal", external_ref="p1", actor="w"))       # +1000 +100
    fired(store.topup(DEMO, NUM, 1000, source="klarna", external_ref="k1", actor="w"))       # +1000 +100
    fired(store.topup(DEMO, NUM2, 1234, source="paysafecard", external_ref="s1", actor="w"))  # +1234
    fired(store.topup(DEMO, NUM2, 500, source="manual", external_ref="m1", actor="op"))      # +500, no fee
    fired(store.debit("demo", NUM, 498, kind="call_debit", source="call", external_ref="c1:1", actor="n",
                      call_session_id="c1"))
    fired(store.credit("demo", NUM, 249, kind="call_refund", source="call", external_ref="c1:refund", actor="n"))
    settled_session(store, "demo", NUM, "c1", 61, store.now_ms())                             # 61 s billed
    fired(store.credit("demo", NUM, 300, kind="manual", source="manual", external_ref="adj", actor="op"))
    fired(store.debit("demo", NUM, 50, kind="api_debit", source="api:k1", external_ref="x", actor="api"))
    fired(store.credit("demo", NUM, 70, kind="api_credit", source="api:k1", external_ref="y", actor="api"))
    fired(store.reverse("demo", NUM2, 2000, source="paysafecard", external_ref="cb", actor="w"))  # takes 1734
    st = fired(store.run(build_statement, [DEMO], "2026-11", title="demo"))
    p = st.parts[0]
    assert [(m.method, m.count, m.amount_cents) for m in p.topups] == [
        ("paypal", 1, 1000), ("klarna", 1, 1000), ("paysafecard", 1, 1234), ("manual", 1, 500)]
    assert (p.paid_topup_cents, p.paid_topup_count, p.bonus_cents) == (3234, 3, 200)
    assert (p.call_debit_cents, p.call_refund_cents, p.call_revenue_cents, p.billed_s) == (498, 249, 249, 61)
    assert (p.manual_credit_cents, p.api_credit_cents, p.api_debit_cents) == (300, 70, 50)
    assert (p.reversal_cents, p.shortfall_cents) == (1734, 266)
    # 5 % of 32.34 = 1.617 -> 1.62; 3 x 0.35; 0.05 x 61/60 min = 5.0833 cents -> 5
    assert (p.fee_topup_percent_cents, p.fee_per_transaction_cents, p.fee_per_minute_cents) == (162, 105, 5)
    assert p.fees_cents == 272
    assert p.net_payout_cents == 3234 - 1734 - 266 - 272
    assert p.reconciles and p.ledger_net_cents == 1000 + 100 + 1000 + 100 + 1234 + 500 - 249 + 300 - 50 + 70 - 1734


def test_fee_percent_rounds_half_up_once(store, store_clock):
    """Two paid top-ups whose 5 % are 0.5 cent each: the fee is 5 % of the total, rounded once (1 cent, not 2)."""
    store_clock.advance(DAY_S)
    fired(store.topup(DEMO, NUM, 10, source="paypal", external_ref="a", actor="w"))
    fired(store.topup(DEMO, NUM, 10, source="paypal", external_ref="b", actor="w"))
    p = fired(store.run(build_statement, [DEMO], "2026-11", title="demo")).parts[0]
    assert p.fee_topup_percent_cents == 1


def ledger_sum_between(store, profiles, since_ms, until_ms):
    def thd(conn):
        A, L = model.accounts, model.ledger
        return conn.execute(sa.select(sa.func.coalesce(sa.func.sum(L.c.amount_cents), 0))
                            .join(A, A.c.id == L.c.account_id)
                            .where(A.c.profile.in_(profiles), L.c.at_ms >= since_ms, L.c.at_ms < until_ms)).scalar()
    return fired(store.run(thd))


@pytest.mark.parametrize("seed", [1, 2])
def test_provider_statement_reconciles_with_ledger_to_the_cent(store, store_clock, seed):
    """A random month over two profiles of one provider (with activity either side of the month):
    the statement's lines, its ledger_net and the ledger's own sum agree to the cent, as do the balances."""
    rnd = random.Random(seed)
    store_clock.advance(-2 * DAY_S)
    for i in range(160):
        store_clock.advance(rnd.randint(60, 12 * 3600))
        profile = rnd.choice([DEMO, LATE])
        number = rnd.choice([NUM, NUM2])
        op = rnd.random()
        amount = rnd.choice([10, 99, 1000, 2000, 1234, 5])
        if op < 0.3:
            fired(store.topup(profile, number, amount, source=rnd.choice(["paypal", "klarna", "paysafecard",
                                                                          "manual"]), external_ref=f"t{i}", actor="w"))
        elif op < 0.6:
            fired(store.debit(profile.name, number, amount, kind="call_debit", source="call",
                              external_ref=f"c{i}", actor="n", call_session_id=f"s{i}"))
            if rnd.random() < 0.5:
                fired(store.credit(profile.name, number, 1 + amount // 3, kind="call_refund", source="call",
                                   external_ref=f"c{i}:refund", actor="n"))
            if fired(store.account(profile.name, number)) is not None:
                settled_session(store, profile.name, number, f"s{i}", rnd.randint(0, 600), store.now_ms())
        elif op < 0.75:
            kind = rnd.choice(["manual", "api_credit", "correction"])
            fired(store.credit(profile.name, number, amount, kind=kind, source="m", external_ref=f"m{i}", actor="o"))
        elif op < 0.9:
            kind = rnd.choice(["manual", "api_debit", "correction"])
            fired(store.debit(profile.name, number, amount, kind=kind, source="m", external_ref=f"d{i}", actor="o"))
        else:
            fired(store.reverse(profile.name, number, amount, source="paypal", external_ref=f"r{i}", actor="w"))
    since, until = month_bounds_ms("2026-11", DEMO.timezone)
    assert store.now_ms() > until, "the activity must run past the month"
    st = fired(store.run(build_statement, [DEMO, LATE], "2026-11", title="Demo GmbH"))
    ledger_net = ledger_sum_between(store, ["demo", "late"], since, until)
    assert st.reconciles
    assert st.total("ledger_net_cents") == ledger_net == sum(p.ledger_lines_cents for p in st.parts)
    # the month's ledger is the change of the balances over the month
    before = ledger_sum_between(store, ["demo", "late"], 0, since)
    after = ledger_sum_between(store, ["demo", "late"], 0, until)
    assert after - before == ledger_net
    # the JSON and CSV carry the same totals
    data = json.loads(to_json(st))
    assert data["totals"]["net_payout_cents"] == st.total("net_payout_cents") and data["reconciles"] is True
    rows = list(csv.DictReader(io.StringIO(to_csv(st))))
    net_total = [r for r in rows if r["profile"] == "total" and r["line"] == "net_payout"]
    assert len(net_total) == 1
    assert round(Decimal(net_total[0]["amount"]) * 100) == st.total("net_payout_cents")
    assert "Net payout" in to_table(st) and "Reconciles with the ledger: yes" in to_table(st)


def test_month_bounds_are_midnights_of_the_zone_and_bad_months_are_refused():
    """A month runs from its first midnight to the next month's in the zone given (Berlin's November, in
    winter time, is UTC's an hour earlier); February 2026 has 28 days; anything but YYYY-MM is a ValueError."""
    assert month_bounds_ms("2026-02", "UTC")[1] - month_bounds_ms("2026-02", "UTC")[0] == 28 * DAY_S * 1000
    utc, berlin = month_bounds_ms("2026-11", "UTC"), month_bounds_ms("2026-11", "Europe/Berlin")
    assert berlin == (utc[0] - 3600_000, utc[1] - 3600_000)
    assert month_bounds_ms("2026-12", "UTC")[1] == month_bounds_ms("2027-01", "UTC")[0]
    for bad in ("2026-13", "2026-1", "nov", "2026-11-01"):
        with pytest.raises(ValueError):
            month_bounds_ms(bad, "UTC")
