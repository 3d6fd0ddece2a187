"""The SQL of call sessions, leases and reconciliation, on the shared store.

:class:`SqlSessionStore` implements :class:`billing.session.SessionStore` and
:class:`billing.reconcile.ReconcileStore` on a :class:`billing.store.Store`:
rows of ``call_sessions`` and ``first_callers`` through ``thd(conn)`` functions
run by ``store.run``; money only through the store's ``debit`` and ``credit``,
so every change of balance is a ledger row and every listener hears of it.

Money is never lost or created, whatever stops where:

* A debit ahead is ``store.debit`` with the reference ``<session>:<n>`` (a retry
  changes nothing), then the session row is brought up to date *only while the
  session is open*. A debit that lands after the session was settled (a
  reconciler on another node was quicker) is given back at once as a
  ``call_refund`` (``<session>:<n>:late``).
* What a session has been debited is read from the ledger (its rows carry the
  session id), never from the session row, so a crash between a debit and the
  row's update loses nothing. The paid boundary is the last one that amount buys.
* Settling refunds ``debited - charge`` with the one reference
  ``<session>:refund`` and then marks the row settled if it is still open; a
  crash between the two is finished by the next settle (the reconciler), whose
  refund repeats the reference and so changes nothing.
"""

from __future__ import annotations

from typing import Callable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from twisted.internet.defer import Deferred, inlineCallbacks

from ..profile import FirstCallerTariff, Increment
from ..rating import Tariff, affordable_s, billed_s, can_start, charge_cents, tariff_for
from ..reconcile import ExpiredSession
from ..session import DebitAhead, DebitOutcome, Opened, OpenRequest, Settlement, SettleRequest
from . import model

SOURCE = "call"


def _tariff_of(row) -> Tariff:
    fc = None
    if row.first_caller_per_minute is not None:
        fc = FirstCallerTariff(sa_decimal(row.first_caller_per_minute), int(row.first_caller_period_s))
    return Tariff(sa_decimal(row.per_minute), Increment(int(row.first_s), int(row.next_s)),
                  int(row.connect_charge_cents), fc)


def sa_decimal(text):
    from decimal import Decimal
    return Decimal(str(text))


# -- thd functions: each runs in one transaction on the store's thread pool --------------------------

def open_thd(conn, request: OpenRequest, account_id, balance_cents: int) -> Opened:
    """Pick the tariff (recording a first caller), refuse what cannot pay, or write the session row."""
    p = request.profile
    first = False
    if p.first_caller is not None:
        fc = model.first_callers
        seen = conn.execute(sa.select(fc.c.first_call_ms).where(
            fc.c.profile == p.name, fc.c.number == request.number)).first()
        first = seen is None
    tariff = tariff_for(p, request.caller_class, first_call=first)
    if not can_start(tariff, balance_cents):
        return Opened(request.session_id, tariff, balance_cents, first, refused="balance too low")
    if first:
        try:
            with conn.begin_nested():
                conn.execute(model.first_callers.insert().values(
                    profile=p.name, number=request.number, first_call_ms=request.now_ms))
        except IntegrityError:  # a concurrent first call of the same caller got it
            first = False
            tariff = tariff_for(p, request.caller_class, first_call=False)
            if not can_start(tariff, balance_cents):
                return Opened(request.session_id, tariff, balance_cents, first, refused="balance too low")
    fc = tariff.first_caller
    conn.execute(model.call_sessions.insert().values(
        id=request.session_id, account_id=account_id, profile=p.name, call_id=request.call_id,
        node_id=request.node_id, state="open", caller_class=request.caller_class.value,
        per_minute=str(tariff.per_minute), first_s=tariff.increment.first_s, next_s=tariff.increment.next_s,
        connect_charge_cents=tariff.connect_charge_cents,
        first_caller_per_minute=None if fc is None else str(fc.per_minute),
        first_caller_period_s=None if fc is None else fc.period_s,
        opened_ms=request.now_ms, charging_started_ms=None, reserved_cents=0, charged_cents=0, billed_s=0,
        lease_until_ms=request.lease_until_ms, settled_ms=None, end_reason=None))
    return Opened(request.session_id, tariff, balance_cents, first)


def start_charging_thd(conn, session_id: str, at_ms: int) -> None:
    cs = model.call_sessions
    conn.execute(cs.update().where(cs.c.id == session_id, cs.c.state == "open")
                 .values(charging_started_ms=at_ms))


def debited_thd(conn, session_id: str) -> int:
    """What the ledger says the session has been debited, net of refunds (positive cents)."""
    lg = model.ledger
    total = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(lg.c.amount_cents), 0))
                         .where(lg.c.call_session_id == session_id)).scalar_one()
    return -int(total)


def record_debit_thd(conn, request: DebitAhead) -> bool:
    """After a debit: the row's paid time, charge so far and lease, if the session is still open."""
    cs = model.call_sessions
    row = conn.execute(sa.select(cs.c.charging_started_ms, cs.c.first_s, cs.c.next_s, cs.c.per_minute,
                                 cs.c.connect_charge_cents, cs.c.first_caller_per_minute,
                                 cs.c.first_caller_period_s).where(cs.c.id == request.session_id)).first()
    if row is None:
        return False
    debited = debited_thd(conn, request.session_id)
    tariff = _tariff_of(row)
    used_s = 0
    if row.charging_started_ms is not None:
        used_s = billed_s(tariff.increment, -(-(request.now_ms - row.charging_started_ms) // 1000))
    paid_s = affordable_s(tariff, debited)
    reserved = debited - charge_cents(tariff, min(used_s, paid_s))
    done = conn.execute(cs.update().where(cs.c.id == request.session_id, cs.c.state == "open").values(
        charged_cents=debited, billed_s=paid_s, reserved_cents=reserved,
        lease_until_ms=request.lease_until_ms))
    return done.rowcount == 1


def renew_thd(conn, session_ids: tuple[str, ...], lease_until_ms: int) -> int:
    cs = model.call_sessions
    done = conn.execute(cs.update().where(cs.c.id.in_(session_ids), cs.c.state == "open")
                        .values(lease_until_ms=lease_until_ms))
    return done.rowcount


def expired_thd(conn, now_ms: int, limit: int, lease_ms: int) -> list[ExpiredSession]:
    cs = model.call_sessions
    rows = conn.execute(sa.select(cs.c.id, cs.c.node_id, cs.c.lease_until_ms)
                        .where(cs.c.state == "open", cs.c.lease_until_ms < now_ms)
                        .order_by(cs.c.lease_until_ms).limit(limit)).all()
    return [ExpiredSession(r.id, r.node_id, int(r.lease_until_ms) - lease_ms) for r in rows]


def _session_row(conn, session_id: str):
    cs = model.call_sessions
    return conn.execute(sa.select(cs).where(cs.c.id == session_id)).first()


def plan_settlement_thd(conn, request: SettleRequest):
    """(row, charge, refund, billed) for settling now; ``charge`` None when the row is settled already."""
    row = _session_row(conn, request.session_id)
    if row is None:
        raise KeyError(f"no call session {request.session_id}")
    if row.state != "open":
        return row, None, 0, int(row.billed_s)
    tariff = _tariff_of(row)
    debited = debited_thd(conn, request.session_id)
    paid_s = affordable_s(tariff, debited)
    if row.charging_started_ms is None:
        billed = 0
    else:
        duration_s = max(0, -(-(request.end_ms - int(row.charging_started_ms)) // 1000))
        billed = min(billed_s(tariff.increment, duration_s), paid_s)
    charge = charge_cents(tariff, billed)
    return row, charge, debited - charge, billed


def finish_settlement_thd(conn, request: SettleRequest, billed: int):
    """Mark the session settled (if still open) with what the ledger says it paid.

    Returns the row as it stands after, and the cents its refunds gave back."""
    cs, lg = model.call_sessions, model.ledger
    charged = debited_thd(conn, request.session_id)
    conn.execute(cs.update().where(cs.c.id == request.session_id, cs.c.state == "open").values(
        state="settled", charged_cents=charged, billed_s=billed, reserved_cents=0,
        settled_ms=request.settled_ms, end_reason=request.reason))
    refunded = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(lg.c.amount_cents), 0)).where(
        lg.c.call_session_id == request.session_id, lg.c.kind == "call_refund")).scalar_one()
    return _session_row(conn, request.session_id), int(refunded)


class SqlSessionStore:
    """Call sessions on the shared SQL store (SQLite or PostgreSQL)."""

    def __init__(self, store, *, lease_s: int, actor: str = "") -> None:
        self.store = store
        self.lease_ms = lease_s * 1000
        self.actor = actor or f"node:{getattr(store, 'node_id', '')}"
        self._names: dict[str, tuple[str, str, str]] = {}

    def on_balance_changed(self, callback: Callable[[str, str, int], None]) -> None:
        self.store.on_balance_changed(callback)

    @inlineCallbacks
    def open_session(self, request: OpenRequest):
        account = yield self.store.account(request.profile.name, request.number)
        if account is None:
            tariff = tariff_for(request.profile, request.caller_class, first_call=False)
            return Opened(request.session_id, tariff, 0, False, refused="no account")
        answer = yield self.store.run(lambda conn: open_thd(conn, request, account.id, account.balance_cents))
        if answer.refused is None:
            self._names[request.session_id] = (request.profile.name, request.number, request.call_id)
        return answer

    def start_charging(self, session_id: str, at_ms: int) -> Deferred:
        return self.store.run(lambda conn: start_charging_thd(conn, session_id, at_ms))

    @inlineCallbacks
    def debit_ahead(self, request: DebitAhead):
        profile, number, call_id = yield self._who(request.session_id)
        result = yield self.store.debit(
            profile, number, request.amount_cents, kind="call_debit", source=SOURCE,
            external_ref=f"{request.session_id}:{request.seq}", actor=self.actor,
            note=f"call {call_id}", call_session_id=request.session_id)
        balance = result.account.balance_cents if result.account is not None else 0
        if not result.applied:
            return DebitOutcome(False, balance, result.reason or "")
        still_open = yield self.store.run(lambda conn: record_debit_thd(conn, request))
        if not still_open:
            back = yield self.store.credit(
                profile, number, request.amount_cents, kind="call_refund", source=SOURCE,
                external_ref=f"{request.session_id}:{request.seq}:late", actor=self.actor,
                note="debit after the session was settled", call_session_id=request.session_id)
            return DebitOutcome(False, back.account.balance_cents, "session settled")
        return DebitOutcome(True, balance)

    def renew_leases(self, session_ids, now_ms, lease_until_ms) -> Deferred:
        return self.store.run(lambda conn: renew_thd(conn, tuple(session_ids), lease_until_ms))

    def expired_sessions(self, now_ms: int, limit: int) -> Deferred:
        return self.store.run(lambda conn: expired_thd(conn, now_ms, limit, self.lease_ms))

    @inlineCallbacks
    def settle(self, request: SettleRequest):
        row, charge, refund, billed = yield self.store.run(lambda conn: plan_settlement_thd(conn, request))
        profile, number, call_id = yield self._who(request.session_id)
        if charge is not None and refund > 0:
            yield self.store.credit(
                profile, number, refund, kind="call_refund", source=SOURCE,
                external_ref=f"{request.session_id}:refund", actor=self.actor,
                note=f"unused reservation of call {call_id}", call_session_id=request.session_id)
        row, refunded = yield self.store.run(lambda conn: finish_settlement_thd(conn, request, billed))
        self._names.pop(request.session_id, None)
        account = yield self.store.account(profile, number)
        return Settlement(row.id, row.call_id, row.profile, number, int(row.charged_cents), refunded,
                          int(row.billed_s), row.end_reason, int(row.settled_ms),
                          None if account is None else account.balance_cents)

    @inlineCallbacks
    def _who(self, session_id: str):
        """(profile, number, call_id) of a session: remembered when opened here, else from the store."""
        who = self._names.get(session_id)
        if who is None:
            who = yield self.store.run(lambda conn: session_names_thd(conn, session_id))
            self._names[session_id] = who
        return who


def session_names_thd(conn, session_id: str) -> tuple[str, str, str]:
    cs, acc = model.call_sessions, model.accounts
    row = conn.execute(sa.select(cs.c.profile, acc.c.number, cs.c.call_id)
                       .select_from(cs.join(acc, acc.c.id == cs.c.account_id))
                       .where(cs.c.id == session_id)).first()
    if row is None:
        raise KeyError(f"no call session {session_id}")
    return (row.profile, row.number, row.call_id)
