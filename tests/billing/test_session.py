"""Call billing sessions on a task.Clock: warning, cut-off, top-ups, start modes, first callers,
shared balances and settlement, on every SessionStore (the in-memory double and the real store)."""

from __future__ import annotations

import sys
from decimal import Decimal

import pytest
from twisted.python.failure import Failure

from billing.profile import BillingProfile, CallerClass, ChargingStart, FirstCallerTariff, Increment
from billing.session import CallBilling, Refused, State, charging_start_ms

from .test_session_harness import HARNESSES

NUMBER = "+4930111222"
DEMO = BillingProfile("demo", Decimal("1.99"), Decimal("2.49"))
PER_SECOND = BillingProfile("persec", Decimal("1.99"), Decimal("2.49"), increment=Increment(1, 1))
FIRST_FREE = BillingProfile("first", Decimal("1.99"), Decimal("2.49"),
                            first_caller=FirstCallerTariff(Decimal("0.00"), 120))


class Controller:
    """What a call controller hears: the events, in order."""

    def __init__(self, clock):
        self.clock = clock
        self.events = []
        self.credits = []        # ("topped_up" | "refunded", cents)
        self.ends_ms = []

    def session_credit_ends(self, event):
        self.ends_ms.append(event.end_ms)

    def session_topped_up(self, event):
        self.credits.append(("topped_up", event.cents))

    def session_refunded(self, event):
        self.credits.append(("refunded", event.cents))

    def session_warning(self, event):
        self.events.append(("warn", round(self.clock.seconds()), event.remaining_s))

    def session_exhausted(self, event):
        self.events.append(("exhausted", round(self.clock.seconds())))


def result(d):
    """The result of a Deferred that has fired (the harness flushes the store first)."""
    out = []
    d.addBoth(out.append)
    assert out, "the Deferred has not fired"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


@pytest.fixture(params=sorted(HARNESSES))
def h(request):
    harness = HARNESSES[request.param](request)
    yield harness
    harness.close()


def advance(h, seconds, step=1):
    """Move the clock in steps, letting the store answer after each (as a real reactor would)."""
    for _ in range(int(seconds // step)):
        h.clock.advance(step)
        h.flush()


def open_session(h, billing, profile=DEMO, controller=None, call_id="c1"):
    controller = controller or Controller(h.clock)
    d = billing.open(profile, NUMBER, CallerClass.LANDLINE, call_id, controller)
    h.flush()
    return result(d), controller


def make_billing(h, **kw):
    return CallBilling(h.store, h.clock, node_id="n1", lease_s=60, **kw)


def charging(h, profile, balance_cents, start_ms=None):
    """A caller with ``balance_cents`` whose call under ``profile`` is charging from ``start_ms`` (now)."""
    h.give(profile, NUMBER, balance_cents)
    billing = make_billing(h)
    session, controller = open_session(h, billing, profile)
    session.start_charging(start_ms)
    h.flush()
    return billing, session, controller


def test_open_answers_minutes_and_refuses_what_cannot_pay_the_first_increment(h):
    """10.00 EUR at 1.99/min: 5 minutes announced; 1.98 EUR is refused before anything is written."""
    h.give(DEMO, NUMBER, 198)
    billing = make_billing(h)
    d = billing.open(DEMO, NUMBER, CallerClass.LANDLINE, "c0", Controller(h.clock))
    h.flush()
    with pytest.raises(Refused) as refused:
        result(d)
    assert refused.value.balance_cents == 198
    h.topup(DEMO, NUMBER, 802, "t1")
    session, _ = open_session(h, billing)
    assert session.minutes == 5
    assert h.balance(DEMO, NUMBER) == 1000  # nothing is debited before charging starts


def test_warning_at_t_minus_120_and_cut_off_at_exhaustion(h):
    """5 minutes of credit: the warning fires at 180 s, the cut-off at 300 s; the balance ends at 5 cents."""
    billing, session, controller = charging(h, DEMO, 1000)
    assert h.balance(DEMO, NUMBER) == 801  # the first minute, ahead
    advance(h, 179)
    assert controller.events == []
    advance(h, 1)
    assert controller.events == [("warn", 180, 120)]
    advance(h, 119)
    assert controller.events == [("warn", 180, 120)]
    advance(h, 1)
    assert controller.events == [("warn", 180, 120), ("exhausted", 300)]
    assert session.state is State.ENDED
    assert h.balance(DEMO, NUMBER) == 5
    settlement = result(session.settle(300_000, "exhausted"))
    h.flush()
    assert (settlement.charge_cents, settlement.refund_cents, settlement.billed_s) == (995, 0, 300)
    assert h.balance(DEMO, NUMBER) == 5
    assert h.ledger_total(DEMO, NUMBER) == 5


def test_topup_at_t_minus_60_cancels_the_cut_off_and_rearms_the_warning(h):
    """A top-up at 240 s (60 s before the end) moves the end to 600 s; the warning comes again at 480 s."""
    billing, session, controller = charging(h, DEMO, 1000)
    advance(h, 240)
    assert controller.events == [("warn", 180, 120)]
    h.topup(DEMO, NUMBER, 1000, "late-topup")  # 5 + 1000: with 995 debited, 2000 buys 10 minutes
    advance(h, 120)
    assert controller.events == [("warn", 180, 120)]  # no cut-off at 300 s
    assert session.state is State.CHARGING
    advance(h, 120)
    assert controller.events == [("warn", 180, 120), ("warn", 480, 120)]
    advance(h, 120)
    assert controller.events[-1] == ("exhausted", 600)
    assert h.balance(DEMO, NUMBER) == 10
    result(session.settle(600_000, "exhausted"))
    h.flush()
    assert h.balance(DEMO, NUMBER) == 10
    assert h.ledger_total(DEMO, NUMBER) == 10


@pytest.mark.parametrize("topup_at_s,events", [
    (200, [("warn", 180, 120), ("warn", 240, 120), ("exhausted", 360)]),
    (250, [("warn", 180, 120), ("exhausted", 360)]),
])
def test_a_small_topup_warns_again_only_when_the_new_warning_time_is_ahead(h, topup_at_s, events):
    """One more minute moves the end from 300 s to 360 s: topped up at 200 s the new warning time (240 s)
    is ahead and the warning plays again; topped up at 250 s it has passed and no warning repeats."""
    billing, session, controller = charging(h, DEMO, 1000)
    advance(h, topup_at_s)
    h.topup(DEMO, NUMBER, 199, "small")
    advance(h, 400 - topup_at_s)
    assert controller.events == events


@pytest.mark.parametrize("mode,offset_s", [
    (ChargingStart.ANSWER, 0), (ChargingStart.ANSWER_10, 10), (ChargingStart.ANSWER_20, 20),
    (ChargingStart.ANSWER_30, 30), (ChargingStart.AFTER_ANNOUNCEMENT, -7)])
def test_each_start_of_charging_mode(h, mode, offset_s):
    """Charging starts at answer + 0/10/20/30 s, or when the announcement ended (7 s before answer here):
    a call ending 1 s before the start costs nothing, 1 s after it costs one minute."""
    answer_ms, announcement_end_ms = 100_000, 93_000
    start_ms = charging_start_ms(mode, answer_ms=answer_ms, announcement_end_ms=announcement_end_ms)
    assert start_ms == answer_ms + offset_s * 1000
    billing = make_billing(h)
    h.give(DEMO, NUMBER, 1000)
    for call_id, end_ms, charge in (("early", start_ms - 1000, 0), ("late", start_ms + 1000, 199)):
        session, _ = open_session(h, billing, call_id=call_id)
        session.start_charging(start_ms)
        h.flush()
        settlement = result(session.settle(end_ms, "hangup"))
        h.flush()
        assert settlement.charge_cents == charge
    assert h.balance(DEMO, NUMBER) == 801


def test_end_is_counted_from_a_start_in_the_future(h):
    """With charging from answer + 30 s, 5 minutes of credit end at answer + 330 s."""
    h.give(DEMO, NUMBER, 1000)
    billing = make_billing(h)
    session, controller = open_session(h, billing)
    session.start_charging(charging_start_ms(ChargingStart.ANSWER_30, answer_ms=0))
    h.flush()
    advance(h, 330)
    assert controller.events == [("warn", 210, 120), ("exhausted", 330)]


def test_first_caller_tariff_is_given_once_then_the_normal_one(h):
    """The first call gets 2 free minutes; the second call of the same caller pays from the first second."""
    h.give(FIRST_FREE, NUMBER, 1000)
    billing = make_billing(h)
    first, _ = open_session(h, billing, FIRST_FREE, call_id="first")
    assert first.first_call and first.minutes == 7
    first.start_charging(0)
    h.flush()
    advance(h, 180)
    s1 = result(first.settle(180_000, "hangup"))
    h.flush()
    assert s1.charge_cents == 199  # minutes 1-2 free, minute 3 at 1.99
    second, _ = open_session(h, billing, FIRST_FREE, call_id="second")
    assert not second.first_call and second.minutes == 4
    second.start_charging(180_000)
    h.flush()
    advance(h, 180)
    s2 = result(second.settle(360_000, "hangup"))
    h.flush()
    assert s2.charge_cents == 597
    assert h.balance(FIRST_FREE, NUMBER) == 1000 - 199 - 597


def test_two_sessions_of_one_caller_never_overspend(h):
    """5.00 EUR, two calls at once: each gets one minute (2 x 1.99); the third minute fits neither; balance 102."""
    h.give(DEMO, NUMBER, 500)
    billing = make_billing(h)
    a, ca = open_session(h, billing, call_id="a")
    b, cb = open_session(h, billing, call_id="b")
    assert a.minutes == b.minutes == 2  # each alone could have two
    a.start_charging()
    b.start_charging()
    h.flush()
    advance(h, 120)
    assert h.balance(DEMO, NUMBER) >= 0
    ends = sorted([ca.events[-1], cb.events[-1]])
    assert ends == [("exhausted", 60), ("exhausted", 60)]
    assert h.balance(DEMO, NUMBER) == 102
    for s in (a, b):
        result(s.settle(None, "exhausted"))
        h.flush()
    assert h.balance(DEMO, NUMBER) == 102
    assert h.ledger_total(DEMO, NUMBER) == h.balance(DEMO, NUMBER)


def test_settle_refunds_the_unused_reservation_and_the_ledger_adds_up(h):
    """1/1 reserves 60 s (1.99) ahead; a call of 10.5 s is billed 11 s = 36.48 -> 36 cents; 163 go back."""
    h.give(PER_SECOND, NUMBER, 1000)
    billing = make_billing(h)
    session, _ = open_session(h, billing, PER_SECOND)
    session.start_charging(0)
    h.flush()
    assert h.balance(PER_SECOND, NUMBER) == 801
    advance(h, 10)
    settlement = result(session.settle(10_500, "hangup"))
    h.flush()
    assert (settlement.charge_cents, settlement.refund_cents, settlement.billed_s) == (36, 163, 11)
    assert h.balance(PER_SECOND, NUMBER) == 964
    assert h.ledger_total(PER_SECOND, NUMBER) == 964
    again = result(session.settle(99_000, "again"))
    assert again == settlement  # idempotent
    assert h.balance(PER_SECOND, NUMBER) == 964


def test_1_1_debits_in_chunks_and_adds_up_over_a_long_call(h):
    """A 1/1 call of 185 s is debited in 60 s chunks (4 debits), then settled to exactly 185 s of charge."""
    h.give(PER_SECOND, NUMBER, 5000)
    billing = make_billing(h)
    session, _ = open_session(h, billing, PER_SECOND)
    session.start_charging(0)
    h.flush()
    advance(h, 185)
    assert billing.debits == 4
    settlement = result(session.settle(185_000, "hangup"))
    h.flush()
    assert settlement.charge_cents == 614  # 1.99 * 185 / 60 = 6.1358 EUR
    assert h.balance(PER_SECOND, NUMBER) == 5000 - 614
    assert h.ledger_total(PER_SECOND, NUMBER) == 5000 - 614


def test_settle_before_charging_charges_nothing(h):
    """A caller who hangs up during the announcement pays nothing and leaves the balance untouched."""
    h.give(DEMO, NUMBER, 1000)
    billing = make_billing(h)
    session, _ = open_session(h, billing)
    settlement = result(session.settle(None, "caller hangup"))
    h.flush()
    assert (settlement.charge_cents, settlement.refund_cents) == (0, 0)
    assert h.balance(DEMO, NUMBER) == 1000
    assert billing.sessions == ()


def test_a_store_error_on_a_debit_is_retried_and_the_call_goes_on(h):
    """The store fails the second debit once: the session keeps what it paid, asks again a second later,
    and the call is charged exactly as without the error."""
    if not hasattr(h.store, "debit_ahead"):
        pytest.skip("needs a store to wrap")
    real = h.store.debit_ahead
    calls = []

    def flaky(request):
        calls.append(request.seq)
        if len(calls) == 2:
            from twisted.internet.defer import fail
            return fail(RuntimeError("database is locked"))
        return real(request)

    h.store.debit_ahead = flaky
    billing, session, controller = charging(h, DEMO, 1000)
    advance(h, 55)
    assert calls == [1, 2] and session.paid_s == 60
    advance(h, 1)
    assert calls == [1, 2, 2]  # the same debit again, under the same reference
    assert session.paid_s == 120 and h.balance(DEMO, NUMBER) == 602
    settlement = result(session.settle(90_000, "hangup"))
    h.flush()
    assert settlement.charge_cents == 398
    assert h.balance(DEMO, NUMBER) == 602 == h.ledger_total(DEMO, NUMBER)


def test_a_late_settle_is_capped_at_the_paid_boundary(h):
    """A controller that settles 30 s after the cut-off is not charged for time nobody paid for."""
    billing, session, controller = charging(h, DEMO, 500)
    advance(h, 150)
    assert controller.events[-1] == ("exhausted", 120)
    settlement = result(session.settle(150_000, "late bye"))
    h.flush()
    assert (settlement.charge_cents, settlement.billed_s) == (398, 120)
    assert h.balance(DEMO, NUMBER) == 102 == h.ledger_total(DEMO, NUMBER)


def test_settle_answers_every_caller_when_the_store_answers_later(h):
    """A store that answers the settlement later (a thread pool): both the first and a repeated settle
    fire with the same Settlement, once it is in."""
    from twisted.internet.defer import Deferred
    real = h.store.settle
    later = []

    def slow(request):
        d = Deferred()
        later.append((d, request))
        return d

    h.store.settle = slow
    billing, session, controller = charging(h, DEMO, 1000)
    advance(h, 30)
    first, second = session.settle(30_000, "hangup"), session.settle(40_000, "again")
    got = []
    first.addCallback(got.append)
    second.addCallback(got.append)
    assert got == [] and len(later) == 1
    d, request = later[0]
    real(request).chainDeferred(d)
    h.flush()
    assert len(got) == 2 and got[0] is got[1] and got[0].charge_cents == 199
    assert h.balance(DEMO, NUMBER) == 801 == h.ledger_total(DEMO, NUMBER)


def test_a_topup_this_node_was_not_told_of_is_found_before_the_cut_off(h):
    """A top-up booked elsewhere (another node, `prepaid topup`) is not announced to this node; the session
    still tries one more increment before its last boundary, finds the money, and the call goes on."""
    billing, session, controller = charging(h, DEMO, 500)
    advance(h, 100)
    h.topup_elsewhere(DEMO, NUMBER, 199, "cli-topup")
    advance(h, 50)
    assert session.state is State.CHARGING and session.paid_s == 180
    advance(h, 50)
    assert controller.events[-1] == ("exhausted", 180)
    assert h.balance(DEMO, NUMBER) == 500 + 199 - 3 * 199


def test_without_a_topup_the_last_try_costs_nothing(h):
    """The one extra try at the last boundary is refused by the balance and changes nothing."""
    billing, session, controller = charging(h, DEMO, 500)
    advance(h, 130)
    assert controller.events[-1] == ("exhausted", 120)
    assert h.balance(DEMO, NUMBER) == 102 == h.ledger_total(DEMO, NUMBER)


def test_the_real_store_and_its_double_offer_the_same_interface():
    """SqlSessionStore and the in-memory double both provide every SessionStore and ReconcileStore method."""
    from billing.db.sessions import SqlSessionStore
    from billing.reconcile import ReconcileStore
    from billing.session import SessionStore

    from .test_session_harness import MemorySessionStore
    wanted = {name for proto in (SessionStore, ReconcileStore) for name in vars(proto)
              if not name.startswith("_")}
    assert wanted >= {"open_session", "debit_ahead", "settle", "renew_leases", "expired_sessions"}
    for impl in (SqlSessionStore, MemorySessionStore):
        assert all(callable(getattr(impl, name, None)) for name in wanted), impl


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_h(request):
    harness = HARNESSES[request.param](request)
    yield harness
    harness.close()


def test_settle_writes_the_charge_into_the_call_record(sql_h):
    """A call record written with the session's id (by the B2BUA) gets the billed seconds and the charge."""
    h = sql_h
    from billing.store import CallRecord
    from tests.conftest import fired
    billing, session, controller = charging(h, DEMO, 1000, start_ms=0)
    record = CallRecord("c1", "demo", "+493012345678", NUMBER, "from", False, "landline", "sip:agent@x",
                        "sip:agent@x", 0, 0, 95_000, "hangup", 200, 200, call_session_id=session.session_id)
    fired(h.db.add_call_record(record))
    advance(h, 95)
    result(session.settle(95_000, "hangup"))
    (stored,) = fired(h.db.calls("demo", NUMBER))
    assert (stored.billed_s, stored.charge_cents) == (120, 398)


def test_the_controller_hears_a_topup_as_such_and_another_calls_refund_as_a_refund(h):
    """Two calls of one caller at 1/1: the second settles after 10 s and refunds the 50 s it had paid
    ahead; the first hears ``Refund(50 s)``, not a top-up, and its end moves by what the refund buys.
    A top-up of 1.99 later is heard as ``TopUp(199)`` and moves the end again by one minute."""
    h.give(PER_SECOND, NUMBER, 1000)
    advance(h, 1)                    # the seed credit is older than the sessions
    billing = make_billing(h)
    first, c1 = open_session(h, billing, PER_SECOND, call_id="c1")
    second, c2 = open_session(h, billing, PER_SECOND, call_id="c2")
    first.start_charging()
    second.start_charging()
    h.flush()
    advance(h, 10)
    end_before_ms = first.end_ms
    refund = result(second.settle(int(h.clock.seconds() * 1000), "hangup")).refund_cents
    h.flush()
    assert refund > 0
    assert c1.credits == [("refunded", refund)]
    assert c1.ends_ms[-1] == first.end_ms > end_before_ms
    end_before_ms = first.end_ms
    h.topup(PER_SECOND, NUMBER, 199, "topup-during-call")
    h.flush()
    assert c1.credits == [("refunded", refund), ("topped_up", 199)]
    assert first.end_ms == end_before_ms + 60_000
    assert c2.credits == []          # settled: it hears nothing any more



def test_a_charging_session_keeps_one_reactor_timer_for_its_debit_warning_and_end(h):
    """The next debit, the warning and the credit's end share one timer (a held call's memory), moved as they
    change; settling leaves none. The firing order is pinned by the warning and cut-off tests above."""
    h.give(DEMO, NUMBER, 1000)
    billing = make_billing(h)
    session, _ = open_session(h, billing)
    idle = len(h.clock.getDelayedCalls())
    session.start_charging()
    h.flush()
    assert len(h.clock.getDelayedCalls()) == idle + 1
    advance(h, 200)
    assert len(h.clock.getDelayedCalls()) == idle + 1
    result(session.settle(None, "hangup"))
    h.flush()
    assert len(h.clock.getDelayedCalls()) == idle


def test_a_callers_open_sessions_are_indexed_in_a_small_tuple_and_forgotten_when_settled(h):
    """Each open session is indexed under its caller (a balance change reaches all its calls): a held call's entry
    is a 1-tuple, not a set of its own (216 B a held call, bench/memory.py --by-site); a second call of the caller
    joins it in the order they opened, and settled sessions leave nothing behind."""
    h.give(DEMO, NUMBER, 1000)
    billing = make_billing(h)
    a, _ = open_session(h, billing, call_id="a")
    [entry] = billing._by_account.values()
    assert entry == (a,) and sys.getsizeof(entry) <= 64
    b, _ = open_session(h, billing, call_id="b")
    assert billing._by_account == {(DEMO.name, NUMBER): (a, b)}
    result(a.settle(None, "hangup"))
    h.flush()
    assert billing._by_account == {(DEMO.name, NUMBER): (b,)}
    result(b.settle(None, "hangup"))
    h.flush()
    assert billing._by_account == {}
