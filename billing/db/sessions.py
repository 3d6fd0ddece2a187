"""The SQL of call sessions, leases and reconciliation, on the shared store.

:class:`SqlSessionStore` implements :class:`billing.session.SessionStore` and
:class:`billing.reconcile.ReconcileStore` on a :class:`billing.store.Store`.
Each operation is one ``thd(conn)`` run by ``store.run``: one transaction that
changes the session row and, where money moves, the balance and its ledger row
(:func:`billing.db.ledger.apply`, the conditional update). After it commits,
the new balance is announced through ``store.announce``.

Money is never lost or created, whatever stops where:

* A debit ahead first claims the session row (``UPDATE ... WHERE state =
  'open'``, which on PostgreSQL also locks it against a settling node), then
  takes the money with reference ``<session>:<n>`` (source ``call``): a retried
  debit finds its ledger row and changes nothing; a debit on a settled session
  changes nothing.
* Settling marks the row settled only if it is open, and in the same
  transaction refunds what the ledger says the session was debited beyond the
  charge (reference ``<session>:refund``). Two settlers (the node itself and a
  reconciler) cannot both refund; the loser reads the winner's result.
* What a session was debited is read from the ledger rows that carry its id.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from twisted.internet.defer import Deferred

from ..profile import FirstCallerTariff, Increment
from ..rating import Tariff, billed_s, can_start, charge_cents, tariff_for
from ..reconcile import ExpiredSession
from ..session import DebitAhead, DebitOutcome, Opened, OpenRequest, Settlement, SettleRequest
from . import accounts, ledger, model

#: the ledger source of every call debit and refund
SOURCE = "call"

CS, FC, L, R = model.call_sessions, model.first_callers, model.ledger, model.call_records


def tariff_of(row) -> Tariff:
    """The tariff snapshot of a ``call_sessions`` row."""
    fc = None
    if row.first_caller_per_minute is not None:
        fc = FirstCallerTariff(Decimal(row.first_caller_per_minute), int(row.first_caller_period_s))
    return Tariff(Decimal(row.per_minute), Increment(int(row.first_s), int(row.next_s)),
                  int(row.connect_charge_cents), fc)


def _ceil_s(ms: int) -> int:
    return -(-ms // 1000)


# -- thd functions: each runs inside one transaction -------------------------------------------------

def open_thd(conn, request: OpenRequest) -> Opened:
    """Read the balance, pick the tariff (recording a first caller), refuse what cannot pay, or write the row."""
    p = request.profile
    account = accounts.find(conn, p.name, request.number)
    if account is None:
        tariff = tariff_for(p, request.caller_class, first_call=False)
        return Opened(request.session_id, tariff, 0, False, refused="no account")
    first = p.first_caller is not None and conn.execute(
        sa.select(FC.c.first_call_ms).where(FC.c.profile == p.name, FC.c.number == request.number)).first() is None
    tariff = tariff_for(p, request.caller_class, first_call=first)
    if not can_start(tariff, account.balance_cents):
        return Opened(request.session_id, tariff, account.balance_cents, first, refused="balance too low")
    if first:
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(FC).values(profile=p.name, number=request.number,
                                                  first_call_ms=request.now_ms))
        except IntegrityError:  # a concurrent first call of the same caller got it
            first = False
            tariff = tariff_for(p, request.caller_class, first_call=False)
            if not can_start(tariff, account.balance_cents):
                return Opened(request.session_id, tariff, account.balance_cents, False, refused="balance too low")
    fc = tariff.first_caller
    conn.execute(sa.insert(CS).values(
        id=request.session_id, account_id=account.id, profile=p.name, call_id=request.call_id,
        node_id=request.node_id, state="open", caller_class=request.caller_class.value,
        per_minute=str(tariff.per_minute), first_s=tariff.increment.first_s, next_s=tariff.increment.next_s,
        connect_charge_cents=tariff.connect_charge_cents,
        first_caller_per_minute=None if fc is None else str(fc.per_minute),
        first_caller_period_s=None if fc is None else fc.period_s,
        opened_ms=request.now_ms, lease_until_ms=request.lease_until_ms, renewed_ms=request.now_ms))
    return Opened(request.session_id, tariff, account.balance_cents, first)


def start_charging_thd(conn, session_id: str, at_ms: int) -> None:
    conn.execute(sa.update(CS).where(CS.c.id == session_id, CS.c.state == "open")
                 .values(charging_started_ms=at_ms))


def debited_cents(conn, session_id: str) -> int:
    """What the ledger says the session was debited, net of its refunds (positive cents)."""
    total = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(L.c.amount_cents), 0))
                         .where(L.c.call_session_id == session_id)).scalar_one()
    return -int(total)


def debit_ahead_thd(conn, request: DebitAhead, actor: str):
    """Take the debit ahead and record the paid time and lease, if the session is open.

    Returns (DebitOutcome, profile, number) — the latter two for the announcement."""
    claimed = conn.execute(sa.update(CS).where(CS.c.id == request.session_id, CS.c.state == "open")
                           .values(lease_until_ms=request.lease_until_ms, renewed_ms=request.now_ms)).rowcount
    row = conn.execute(sa.select(CS.c.account_id, CS.c.call_id).where(CS.c.id == request.session_id)).first()
    if row is None:
        return DebitOutcome(False, 0, "no session"), None, None
    account = accounts.by_id(conn, row.account_id)
    if not claimed:
        return DebitOutcome(False, account.balance_cents, "session settled"), None, None
    ref = f"{request.session_id}:{request.seq}"
    if ledger.find_entry(conn, SOURCE, ref) is not None:
        return DebitOutcome(True, account.balance_cents, "duplicate"), None, None
    entry = ledger.apply(conn, account, ledger.Line("call_debit", -request.amount_cents, ref), source=SOURCE,
                         actor=actor, note=f"call {row.call_id}", now_ms=request.now_ms,
                         call_session_id=request.session_id)
    if entry is None:
        return DebitOutcome(False, account.balance_cents, "insufficient"), None, None
    conn.execute(sa.update(CS).where(CS.c.id == request.session_id).values(
        paid_s=request.paid_s, debit_seq=request.seq, charged_cents=request.debited_cents,
        reserved_cents=request.amount_cents))
    return DebitOutcome(True, entry.balance_after_cents), account.profile, account.number


def renew_thd(conn, session_ids: tuple[str, ...], now_ms: int, lease_until_ms: int) -> int:
    """Extend the leases of those sessions that are still open; how many were."""
    return conn.execute(sa.update(CS).where(CS.c.id.in_(session_ids), CS.c.state == "open")
                        .values(lease_until_ms=lease_until_ms, renewed_ms=now_ms)).rowcount


def expired_thd(conn, now_ms: int, limit: int, lease_ms: int) -> list[ExpiredSession]:
    """Open sessions whose lease ended before ``now_ms``, with their last renewal (for a row written before
    migration 0002: the lease's end minus ``lease_ms``)."""
    rows = conn.execute(sa.select(CS.c.id, CS.c.node_id, CS.c.lease_until_ms, CS.c.renewed_ms)
                        .where(CS.c.state == "open", CS.c.lease_until_ms < now_ms)
                        .order_by(CS.c.lease_until_ms, CS.c.id).limit(limit)).all()
    return [ExpiredSession(r.id, r.node_id, int(r.renewed_ms) if r.renewed_ms is not None
                           else int(r.lease_until_ms) - lease_ms) for r in rows]


def settle_thd(conn, request: SettleRequest, actor: str):
    """Settle the session if it is open: charge the billed time, refund the rest, write the call record's charge.

    Returns (Settlement, announce) where ``announce`` is (profile, number, balance) when money moved."""
    row = conn.execute(sa.select(CS).where(CS.c.id == request.session_id)).first()
    if row is None:
        raise KeyError(f"no call session {request.session_id}")
    won = 0
    if row.state == "open":
        tariff = tariff_of(row)
        billed = 0
        if row.charging_started_ms is not None:
            duration_s = max(0, _ceil_s(request.end_ms - int(row.charging_started_ms)))
            billed = min(billed_s(tariff.increment, duration_s), int(row.paid_s))
        charge = charge_cents(tariff, billed)
        won = conn.execute(sa.update(CS).where(CS.c.id == request.session_id, CS.c.state == "open").values(
            state="settled", charged_cents=charge, billed_s=billed, reserved_cents=0,
            settled_ms=request.settled_ms, end_reason=request.reason)).rowcount
    announce = None
    if won:
        account = accounts.by_id(conn, row.account_id)
        refund = debited_cents(conn, request.session_id) - charge
        if refund > 0:
            entry = ledger.apply(conn, account, ledger.Line("call_refund", refund, f"{request.session_id}:refund"),
                                 source=SOURCE, actor=actor, note=f"unused reservation of call {row.call_id}",
                                 now_ms=request.settled_ms, call_session_id=request.session_id)
            announce = (account.profile, account.number, entry.balance_after_cents)
        conn.execute(sa.update(R).where(R.c.call_session_id == request.session_id)
                     .values(charge_cents=charge, billed_s=billed))
    return settlement_of(conn, request.session_id), announce


def settlement_of(conn, session_id: str) -> Settlement:
    """The settlement of a settled session, as its row and ledger say."""
    row = conn.execute(sa.select(CS).where(CS.c.id == session_id)).first()
    account = accounts.by_id(conn, row.account_id)
    refunded = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(L.c.amount_cents), 0)).where(
        L.c.call_session_id == session_id, L.c.kind == "call_refund")).scalar_one()
    return Settlement(row.id, row.call_id, row.profile, account.number, int(row.charged_cents), int(refunded),
                      int(row.billed_s), row.end_reason or "", int(row.settled_ms or 0), account.balance_cents)


class SqlSessionStore:
    """Call sessions on the shared SQL store (SQLite or PostgreSQL)."""

    def __init__(self, store, *, lease_s: int, actor: str = "") -> None:
        self.store = store
        self.lease_ms = lease_s * 1000
        self.actor = actor or f"node:{store.node_id}"

    def on_balance_changed(self, callback: Callable[[str, str, int], None]) -> None:
        self.store.on_balance_changed(callback)

    def open_session(self, request: OpenRequest) -> Deferred:
        return self.store.run(open_thd, request)

    def start_charging(self, session_id: str, at_ms: int) -> Deferred:
        return self.store.run(start_charging_thd, session_id, at_ms)

    def debit_ahead(self, request: DebitAhead) -> Deferred:
        def done(result):
            outcome, profile, number = result
            if profile is not None:
                self.store.announce(profile, number, outcome.balance_cents)
            return outcome
        return self.store.run(debit_ahead_thd, request, self.actor).addCallback(done)

    def renew_leases(self, session_ids, now_ms: int, lease_until_ms: int) -> Deferred:
        return self.store.run(renew_thd, tuple(session_ids), now_ms, lease_until_ms)

    def expired_sessions(self, now_ms: int, limit: int) -> Deferred:
        return self.store.run(expired_thd, now_ms, limit, self.lease_ms)

    def settle(self, request: SettleRequest) -> Deferred:
        def done(result):
            settlement, announce = result
            if announce is not None:
                self.store.announce(*announce)
            return settlement
        return self.store.run(settle_thd, request, self.actor).addCallback(done)
