"""Reconciliation: sessions of a node that stopped renewing are settled up to their last renewal."""

from __future__ import annotations

import pytest

from billing.reconcile import LEASE_EXPIRED, Reconciler
from billing.profile import CallerClass
from billing.session import CallBilling, State
from billing.store import CallRecord

from .test_session import DEMO, NUMBER, PER_SECOND, Controller, advance, open_session, result
from .test_session_harness import HARNESSES


@pytest.fixture(params=sorted(HARNESSES))
def h(request):
    harness = HARNESSES[request.param](request)
    yield harness
    harness.close()


def crashed_call(h, profile, balance, run_s, renew_interval_s=None):
    """A call on node A that charges for run_s seconds, after which node A stops (no settle, no renewal)."""
    h.give(profile, NUMBER, balance)
    node_a = CallBilling(h.store, h.clock, node_id="a", lease_s=60, renew_interval_s=renew_interval_s)
    session, _ = open_session(h, node_a, profile)
    session.start_charging()
    h.flush()
    advance(h, run_s)
    node_a.stop()
    for s in node_a.sessions:  # the process dies: its timers die with it
        s._cancel_timers()
    return session


def test_a_crashed_call_is_settled_up_to_its_last_renewal(h):
    """Node A renews every 20 s; it dies at 50 s (last renewal at 40 s). Node B settles after the lease:
    40 s at 1/1 = 1.33 EUR charged, the rest of the 60 s reservation refunded; nothing lost or created."""
    session = crashed_call(h, PER_SECOND, 1000, 50)
    node_b = Reconciler(h.store, h.clock, interval_s=30)
    node_b.start()
    h.flush()
    assert node_b.settled == 0  # the lease (until 100 s) still runs
    advance(h, 60)
    assert node_b.settled == 1
    node_b.stop()
    charge = 133  # 1.99 * 40 / 60 = 1.3267
    assert h.balance(PER_SECOND, NUMBER) == 1000 - charge
    assert h.ledger_total(PER_SECOND, NUMBER) == 1000 - charge
    assert h.session_state(session.session_id) == ("settled", charge, LEASE_EXPIRED)


def test_reconcile_at_60_60_charges_the_minute_in_progress_and_only_that(h):
    """A 60/60 call that dies at 75 s (renewed at 60 s and by its debit at 55 s): two minutes were debited,
    the billed time up to the last renewal (60 s) is one minute: 1.99 charged, 1.99 refunded."""
    session = crashed_call(h, DEMO, 1000, 75)
    assert h.balance(DEMO, NUMBER) == 1000 - 398
    advance(h, 70)
    settled = Reconciler(h.store, h.clock, 30).run_once()
    h.flush()
    assert [s.charge_cents for s in result(settled)] == [199]
    assert h.balance(DEMO, NUMBER) == 1000 - 199
    assert h.ledger_total(DEMO, NUMBER) == 1000 - 199


def test_a_node_dying_before_its_first_renewal_gives_no_free_call(h):
    """Node A dies 10 s into a 60/60 call, before its first renewal (at 20 s): the session's last sign of
    life is the start of charging.  It was settled as 0 s, the whole minute refunded: a free call.  The
    caller was connected then, so the first minute is owed: 1.99 charged, nothing refunded."""
    session = crashed_call(h, DEMO, 1000, 10)
    assert h.balance(DEMO, NUMBER) == 1000 - 199
    advance(h, 70)
    settled = result(Reconciler(h.store, h.clock, 30).run_once())
    assert [(s.billed_s, s.charge_cents, s.refund_cents) for s in settled] == [(60, 199, 0)]
    assert h.balance(DEMO, NUMBER) == 1000 - 199
    assert h.ledger_total(DEMO, NUMBER) == 1000 - 199
    assert h.session_state(session.session_id) == ("settled", 199, LEASE_EXPIRED)


def test_at_1_1_a_node_dying_before_its_first_renewal_bills_the_first_second(h):
    """The same at 1/1: billed 1 s (the least a connected call owes), the rest of the reservation back."""
    crashed_call(h, PER_SECOND, 1000, 10)
    advance(h, 70)
    settled = result(Reconciler(h.store, h.clock, 30).run_once())
    assert [s.billed_s for s in settled] == [1]
    assert h.balance(PER_SECOND, NUMBER) == 1000 - settled[0].charge_cents
    assert settled[0].charge_cents > 0


def test_renewals_every_few_seconds_bill_a_dying_node_s_call_up_to_seconds_before_it_died(h):
    """renew_interval_s = 5 (the example config's): a 1/1 call whose node dies at 47 s was last renewed at
    45 s, so 45 s are billed (1.49 EUR), where the default third of the lease (every 20 s) billed 40 s."""
    crashed_call(h, PER_SECOND, 1000, 47, renew_interval_s=5)
    advance(h, 70)
    settled = result(Reconciler(h.store, h.clock, 30).run_once())
    assert [(s.billed_s, s.charge_cents) for s in settled] == [(45, 149)]   # 1.99 * 45 / 60 = 1.4925
    assert h.balance(PER_SECOND, NUMBER) == h.ledger_total(PER_SECOND, NUMBER) == 1000 - 149


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_h(request):
    harness = HARNESSES[request.param](request)
    yield harness
    harness.close()


def test_a_crashed_call_is_in_the_itemised_list_from_its_session(sql_h):
    """A call whose node died wrote no call record; once reconciled it is still in the caller's itemised list
    (`prepaid calls`), from its session: Call-ID, start, billed seconds and charge, end reason "lease
    expired", ending at the node's last renewal (40 s), identity unknown. A call its node settled is
    listed from its record only (never from its session while the record is on its way), and the limit
    counts both kinds."""
    h = sql_h
    session = crashed_call(h, PER_SECOND, 1000, 50)
    opened_ms = h.clock.seconds() * 1000 - 50_000
    advance(h, 60)
    result(Reconciler(h.store, h.clock, 30).run_once())
    h.flush()
    (row,) = result(h.db.calls(PER_SECOND.name, NUMBER))
    assert (row.id, row.call_id, row.call_session_id, row.caller, row.identity_source, row.service_number) == (
        None, session.call_id, session.session_id, NUMBER, "unknown", "")
    assert (row.invite_ms, row.end_ms, row.end_reason, row.billed_s, row.charge_cents) == (
        opened_ms, opened_ms + 40_000, LEASE_EXPIRED, 40, 133)

    later = CallBilling(h.store, h.clock, node_id="b", lease_s=60)
    live, _ = open_session(h, later, PER_SECOND)
    live.start_charging()
    h.flush()
    advance(h, 10)
    settlement = result(live.settle(None, "hangup"))
    h.flush()
    later.stop()
    assert result(h.db.calls(PER_SECOND.name, NUMBER)) == [row]  # its record is not written yet
    stored = result(h.db.add_call_record(CallRecord(
        call_id=live.call_id, profile=PER_SECOND.name, service_number="+493012345678", caller=NUMBER,
        identity_source="from", privacy=False, caller_class="mobile", agent_tried="sip:a@x", agent_answered="sip:a@x",
        invite_ms=int(h.clock.seconds() * 1000) - 11_000, answer_ms=None, end_ms=int(h.clock.seconds() * 1000),
        end_reason="hangup", a_status=200, b_status=200, billed_s=settlement.billed_s,
        charge_cents=settlement.charge_cents, call_session_id=live.session_id)))
    assert result(h.db.calls(PER_SECOND.name, NUMBER)) == [stored, row]
    assert result(h.db.calls(PER_SECOND.name, NUMBER, limit=1)) == [stored]


def test_a_live_session_is_not_reconciled_and_a_reconciled_one_settles_once(h):
    """Leases of a live node are renewed, so a reconciler leaves its calls alone; a session that was
    reconciled answers a late settle from its own node with the same settlement, moving no money."""
    h.give(DEMO, NUMBER, 1000)
    live = CallBilling(h.store, h.clock, node_id="live", lease_s=60)
    session, _ = open_session(h, live)
    session.start_charging()
    h.flush()
    reconciler = Reconciler(h.store, h.clock, interval_s=30)
    reconciler.start()
    advance(h, 240)
    assert reconciler.settled == 0 and session.state is State.CHARGING
    live.stop()
    advance(h, 120)  # renewals stop; the last attempt to debit (at 295 s, refused) renewed until 355 s
    assert reconciler.settled == 1
    balance = h.balance(DEMO, NUMBER)
    late = result(session.settle(None, "hangup"))
    h.flush()
    assert late.reason == LEASE_EXPIRED
    assert h.balance(DEMO, NUMBER) == balance == h.ledger_total(DEMO, NUMBER)
    reconciler.stop()


def test_the_reconciler_takes_the_node_store_as_it_is(tmp_path):
    """The server hands Reconciler its billing Store; a session left open by a dead node is settled on
    the Clock's schedule, and stop() ends the schedule."""
    from .test_session_harness import SqlHarness

    h = SqlHarness(None, f"sqlite:///{tmp_path}/r.db")
    try:
        session = crashed_call(h, DEMO, 1000, 30)
        reconciler = Reconciler(h.db, h.clock, interval_s=30)
        reconciler.start()
        advance(h, 60)
        assert reconciler.settled == 1
        assert h.session_state(session.session_id)[0] == "settled"
        reconciler.stop()
        assert h.clock.getDelayedCalls() == []
        assert h.balance(DEMO, NUMBER) == 1000 - 199 == h.ledger_total(DEMO, NUMBER)
    finally:
        h.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_settlers_at_once_refund_once(kind, request):
    """The node settling its call and a reconciler settling it at the same moment, on two connections:
    one wins, one refund row is written, and both answer with the winner's settlement."""
    import threading

    from billing.session import SettleRequest

    h = HARNESSES[kind](request)
    try:
        h.give(PER_SECOND, NUMBER, 1000)
        billing = CallBilling(h.store, h.clock, node_id="a", lease_s=60)
        for round_ in range(5):
            session, _ = open_session(h, billing, PER_SECOND, call_id=f"race-{round_}")
            session.start_charging()
            advance(h, 10)
            answers, errors = [], []
            barrier = threading.Barrier(2)

            def settle(end_s, reason):
                try:
                    barrier.wait(5)
                    req = SettleRequest(session.session_id, int(h.clock.seconds() * 1000) - end_s * 1000,
                                        int(h.clock.seconds() * 1000), reason)
                    answers.append(result(h.store.settle(req)))
                except Exception as exc:  # pragma: no cover - reported below
                    errors.append(exc)
            threads = [threading.Thread(target=settle, args=(0, "hangup")),
                       threading.Thread(target=settle, args=(5, LEASE_EXPIRED))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert errors == [] and len(answers) == 2
            assert answers[0] == answers[1]
            billing._forget(session)
            session._cancel_timers()
        assert h.ledger_total(PER_SECOND, NUMBER) == h.balance(PER_SECOND, NUMBER)
        refunds = h.refund_rows(PER_SECOND, NUMBER)
        assert len(refunds) == 5 and len(set(refunds)) == 5  # one per session, never two
    finally:
        h.close()


def test_prepaid_reconcile_prints_a_table_of_what_it_settled(tmp_path, capsys):
    """`prepaid reconcile` on a store with one dead call and one live call settles the dead one only and
    prints it as a table row; a second run says that nothing was left."""
    import time

    from b2bua.node.cli import main
    from billing.db.sessions import SqlSessionStore
    from billing.store import Store
    from tests.conftest import fired

    from .test_crash import write_config
    from .test_session_harness import MemoryHarness

    url = f"sqlite:///{tmp_path}/cli.db"
    clock = MemoryHarness(None).clock
    clock.advance(time.time() - 3600)  # an hour ago: the dead call's lease is long over
    db = Store.open(url, clock, node_id="dead", inline=True)
    try:
        fired(db.upgrade())
        fired(db.credit("demo", NUMBER, 1000, kind="manual", source="test", external_ref="seed", actor="t"))
        billing = CallBilling(SqlSessionStore(db, lease_s=60), clock, node_id="dead", lease_s=60)
        dead = result(billing.open(DEMO, NUMBER, CallerClass.LANDLINE, "dead-call", Controller(clock)))
        dead.start_charging()
        clock.advance(3000)  # still an hour behind the wall clock: charging ran on, paid a minute at a time
        live_clock = MemoryHarness(None).clock
        live_clock.advance(time.time())
        live = CallBilling(SqlSessionStore(db, lease_s=60), live_clock, node_id="live", lease_s=60)
        alive = result(live.open(DEMO, NUMBER, CallerClass.LANDLINE, "live-call", Controller(live_clock)))
        config = write_config(tmp_path, url)
        assert main(["reconcile", "--config", config]) == 0
        out = capsys.readouterr().out
        assert out.startswith("1 call session(s) settled")
        assert dead.session_id in out and alive.session_id not in out
        assert main(["reconcile", "--config", config]) == 0
        assert capsys.readouterr().out.startswith("0 call session(s) settled")
        account = fired(db.account("demo", NUMBER))
        assert fired(db.ledger_sum(account.id)) == account.balance_cents
    finally:
        db.close()
