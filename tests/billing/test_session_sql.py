"""What the SQL session store (billing/db/sessions.py) does in few statements, on SQLite and PostgreSQL:
the start of charging goes with the first debit, repeated debits change nothing however they are found,
and a settlement made from what the settling transaction wrote is what the store says afterwards."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from twisted.internet.defer import fail

from billing.db.model import call_sessions as CS
from billing.db.sessions import settlement_of
from billing.session import DebitAhead, SettleRequest
from tests.conftest import fired

from .test_session import DEMO, NUMBER, advance, charging, open_session, result
from .test_session_harness import postgres_harness, sqlite_harness


@pytest.fixture(params=["sqlite", "postgresql"])
def h(request):
    harness = (sqlite_harness if request.param == "sqlite" else postgres_harness)(request)
    yield harness
    harness.close()


def row(h, session_id):
    def thd(conn):
        return conn.execute(sa.select(CS).where(CS.c.id == session_id)).one()
    return fired(h.db.run(thd))


def ledger_rows(h):
    return fired(h.db.transactions(profile=DEMO.name, number=NUMBER))


def test_the_first_debit_records_when_charging_started_also_when_refused(h):
    """Charging starts at 12.345 s: the row has that start after the first debit, with no transaction of its
    own; when that debit is refused (the balance went elsewhere since the open), the start is kept anyway."""
    billing, session, _ = charging(h, DEMO, 1000, start_ms=12_345)
    assert (row(h, session.session_id).charging_started_ms, row(h, session.session_id).paid_s) == (12_345, 60)

    late, _ = open_session(h, billing, call_id="c2")
    fired(h.db.debit(DEMO.name, NUMBER, h.balance(DEMO, NUMBER), kind="manual", source="op", external_ref="all",
                     actor="test"))
    late.start_charging(20_000)
    h.flush()
    state = row(h, late.session_id)
    assert (state.charging_started_ms, state.paid_s, state.debit_seq) == (20_000, 0, 0)
    assert h.balance(DEMO, NUMBER) == 0 == h.ledger_total(DEMO, NUMBER)


def test_a_debit_whose_answer_was_lost_is_sent_again_and_taken_once(h):
    """The store takes the second debit but its answer is lost: the session asks again under the same
    reference a second later and hears it was taken; one ledger row, the call charged exactly."""
    real = h.store.debit_ahead
    seqs = []

    def lossy(request):
        seqs.append(request.seq)
        d = real(request)
        if len(seqs) == 2:
            return d.addCallback(lambda _: fail(RuntimeError("connection reset")))
        return d
    h.store.debit_ahead = lossy
    billing, session, _ = charging(h, DEMO, 1000)
    advance(h, 56)
    assert seqs == [1, 2, 2] and session.paid_s == 120
    assert [e.amount_cents for e in ledger_rows(h) if e.kind == "call_debit"] == [-199, -199]
    assert result(session.settle(90_000)).charge_cents == 398
    assert h.balance(DEMO, NUMBER) == 602 == h.ledger_total(DEMO, NUMBER)


def test_a_repeat_the_session_row_does_not_know_of_is_refused_by_the_ledger(h):
    """Even with the row's debit_seq behind (as if its update were lost), a repeated reference cannot take
    money twice: the ledger's UNIQUE refuses the row, the transaction changes nothing, and the answer is
    that the debit was taken before."""
    billing, session, _ = charging(h, DEMO, 1000)
    fired(h.db.run(lambda conn: conn.execute(sa.update(CS).where(CS.c.id == session.session_id)
                                             .values(debit_seq=0))))
    now = int(h.clock.seconds() * 1000)
    again = DebitAhead(session.session_id, 1, 199, 60, 199, now, now + 60_000)
    outcome = result(h.store.debit_ahead(again))
    assert (outcome.applied, outcome.reason, outcome.balance_cents) == (True, "duplicate", 801)
    assert h.balance(DEMO, NUMBER) == 801 == h.ledger_total(DEMO, NUMBER)
    assert len([e for e in ledger_rows(h) if e.kind == "call_debit"]) == 1


@pytest.mark.parametrize("end_s, charge, refund", [(59, 199, 199), (110, 398, 0), (None, 0, 398)])
def test_the_settlement_is_what_the_store_says_afterwards(h, end_s, charge, refund):
    """Settled with a refund, without one (ended at the paid boundary) and never charged: the Settlement
    built inside the settling transaction equals the one read back from the row and the ledger, and a
    second settle answers the same."""
    billing, session, _ = charging(h, DEMO, 1000, start_ms=0)
    advance(h, 56)  # the second minute is paid: 398 cents debited
    if end_s is None:
        settlement = result(session.settle(0, "no answer"))
    else:
        settlement = result(session.settle(end_s * 1000, "hangup"))
    assert (settlement.charge_cents, settlement.refund_cents) == (charge, refund)
    assert settlement == fired(h.db.run(settlement_of, session.session_id))
    assert settlement.balance_cents == 1000 - charge == h.balance(DEMO, NUMBER)
    assert result(h.store.settle(SettleRequest(session.session_id, 1, 2, "again"))) == settlement
