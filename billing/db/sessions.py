"""The SQL of call sessions, leases and reconciliation, on the shared store.

:class:`SqlSessionStore` implements :class:`billing.session.SessionStore` and
:class:`billing.reconcile.ReconcileStore` on a :class:`billing.store.Store`.
Each operation is one ``thd(conn)`` run by ``store.run``: one transaction that
changes the session row and, where money moves, the balance and its ledger row
(the conditional update, :func:`billing.db.ledger.write_row`). After it commits,
the new balance is announced through ``store.announce``. The statements every
call runs are built once and run on the driver's cursor
(:mod:`billing.db.prepared`); ``bench/store_calls.py`` measures what a call costs.
Opening a session goes to the store's thread at once (the call waits for it);
debits ahead, settlements and lease renewals go with the next work handed to
it (``Store.run_soon``, 50 ms at the latest), in the same wake-up and COMMIT.

Money is never lost or created, whatever stops where:

* A debit ahead first claims the session row (``UPDATE ... WHERE state =
  'open'``, which on PostgreSQL also locks it against a settling node), then
  takes the money with reference ``<session>:<n>`` (source ``call``): a retried
  debit finds its ledger row and changes nothing (the ledger's UNIQUE
  (source, external_ref) refuses a second row whatever else happens); a debit
  on a settled session changes nothing. Every debit carries the time charging
  started; the first one records it (starting costs no transaction of its own).
* Settling marks the row settled only if it is open, and in the same
  transaction refunds what the ledger says the session was debited beyond the
  charge (reference ``<session>:refund``). Two settlers (the node itself and a
  reconciler) cannot both refund; the loser reads the winner's result.
* What a session was debited is read from the ledger rows that carry its id.
"""

from __future__ import annotations

from collections import namedtuple
from decimal import Decimal
from typing import Callable

import sqlalchemy as sa
from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from twisted.internet.defer import Deferred

from ..profile import FirstCallerTariff, Increment
from ..rating import Tariff, billed_s, can_start, charge_cents, tariff_for
from ..reconcile import ExpiredSession
from ..session import Credits, DebitAhead, DebitOutcome, Opened, OpenRequest, Settlement, SettleRequest
from . import accounts, ledger, model
from .prepared import Prepared

#: the ledger source of every call debit and refund
SOURCE = "call"

A, CS, FC, L, R = model.accounts, model.call_sessions, model.first_callers, model.ledger, model.call_records


def _ceil_s(ms: int) -> int:
    return -(-ms // 1000)


# -- the statements every call runs, built once (see billing/db/prepared.py) ------------------------

_ACCOUNT = Prepared(sa.select(A.c.id, A.c.balance_cents)
                    .where(A.c.profile == bindparam("profile"), A.c.number == bindparam("number")))
_FIRST_CALL = Prepared(sa.select(FC.c.first_call_ms)
                       .where(FC.c.profile == bindparam("profile"), FC.c.number == bindparam("number")))
_NEW_FIRST_CALLER = Prepared(sa.insert(FC).values(profile=bindparam("profile"), number=bindparam("number"),
                                                  first_call_ms=bindparam("first_call_ms")))
_OPEN_COLUMNS = ("id", "account_id", "profile", "call_id", "node_id", "state", "caller_class", "per_minute",
                 "first_s", "next_s", "connect_charge_cents", "first_caller_per_minute", "first_caller_period_s",
                 "opened_ms", "lease_until_ms", "renewed_ms")
_NEW_SESSION = Prepared(sa.insert(CS).values({name: bindparam(name) for name in _OPEN_COLUMNS}))

#: a debit claims the session row first (on PostgreSQL: locks it against a settler), renewing its lease;
#: the first debit also records when charging started
_CLAIM = Prepared(sa.update(CS).where(CS.c.id == bindparam("sid"), CS.c.state == "open")
                  .values(lease_until_ms=bindparam("lease_until_ms"), renewed_ms=bindparam("now_ms"),
                          charging_started_ms=sa.func.coalesce(bindparam("start_ms", type_=sa.BigInteger),
                                                               CS.c.charging_started_ms))
                  .returning(CS.c.account_id, CS.c.call_id, CS.c.debit_seq))
#: the conditional debit: nothing when the balance does not cover it
_TAKE = Prepared(sa.update(A).where(A.c.id == bindparam("account_id"), A.c.balance_cents >= bindparam("amount"))
                 .values(balance_cents=A.c.balance_cents - bindparam("amount"), updated_ms=bindparam("now_ms"))
                 .returning(A.c.balance_cents, A.c.profile, A.c.number))
_PAID = Prepared(sa.update(CS).where(CS.c.id == bindparam("sid")).values(
    paid_s=bindparam("paid_s"), debit_seq=bindparam("seq"), charged_cents=bindparam("charged_cents"),
    reserved_cents=bindparam("reserved_cents")))
_BALANCE = Prepared(sa.select(A.c.balance_cents, A.c.profile, A.c.number).where(A.c.id == bindparam("account_id")))

#: settling claims the row (open -> settled) and reads, under that claim, what it needs to rate the call
_SETTLE_CLAIM = Prepared(
    sa.update(CS).where(CS.c.id == bindparam("sid"), CS.c.state == "open")
    .values(state="settled", reserved_cents=0, settled_ms=bindparam("settled_ms"), end_reason=bindparam("reason"))
    .returning(CS.c.account_id, CS.c.call_id, CS.c.profile, CS.c.per_minute, CS.c.first_s, CS.c.next_s,
               CS.c.connect_charge_cents, CS.c.first_caller_per_minute, CS.c.first_caller_period_s,
               CS.c.charging_started_ms, CS.c.paid_s, CS.c.opened_ms))
_SettleRow = namedtuple("_SettleRow", "account_id call_id profile per_minute first_s next_s connect_charge_cents "
                                      "first_caller_per_minute first_caller_period_s charging_started_ms paid_s "
                                      "opened_ms")
#: a first-caller offer claimed at open and never used (charging never started) goes back to the caller
_UNCLAIM_FIRST_CALLER = Prepared(sa.delete(FC).where(FC.c.profile == bindparam("profile"),
                                                     FC.c.number == bindparam("number"),
                                                     FC.c.first_call_ms == bindparam("opened_ms")))
_CHARGED = Prepared(sa.update(CS).where(CS.c.id == bindparam("sid"))
                    .values(charged_cents=bindparam("charge"), billed_s=bindparam("billed")))
_DEBITED = Prepared(sa.select(sa.func.coalesce(sa.func.sum(L.c.amount_cents), 0))
                    .where(L.c.call_session_id == bindparam("sid")))
_GIVE = Prepared(sa.update(A).where(A.c.id == bindparam("account_id"))
                 .values(balance_cents=A.c.balance_cents + bindparam("amount"), updated_ms=bindparam("now_ms"))
                 .returning(A.c.balance_cents, A.c.profile, A.c.number))
#: what the ledger credited to a session's account since it opened: top-ups (every positive row that is no
#: call refund) and the refunds of the account's other sessions (its own refunds only come when it settles)
_OWN = CS.alias("own")
_CREDITS = Prepared(
    sa.select(sa.func.coalesce(sa.func.sum(sa.case((sa.and_(L.c.kind != "call_refund", L.c.amount_cents > 0),
                                                    L.c.amount_cents), else_=0)), 0),
              sa.func.coalesce(sa.func.sum(sa.case((sa.and_(L.c.kind == "call_refund",
                                                            L.c.call_session_id != _OWN.c.id),
                                                    L.c.amount_cents), else_=0)), 0))
    .select_from(L.join(_OWN, sa.and_(L.c.account_id == _OWN.c.account_id, L.c.at_ms >= _OWN.c.opened_ms)))
    .where(_OWN.c.id == bindparam("sid")))
#: a record written before its session settled (the node's settle failed; a reconciler settles later)
_RECORD_CHARGE = Prepared(sa.update(R).where(R.c.call_id == bindparam("call_id"),
                                             R.c.call_session_id == bindparam("sid"))
                          .values(charge_cents=bindparam("charge"), billed_s=bindparam("billed")))


def tariff_of(row) -> Tariff:
    """The tariff snapshot of a ``call_sessions`` row."""
    fc = None
    if row.first_caller_per_minute is not None:
        fc = FirstCallerTariff(Decimal(row.first_caller_per_minute), int(row.first_caller_period_s))
    return Tariff(Decimal(row.per_minute), Increment(int(row.first_s), int(row.next_s)),
                  int(row.connect_charge_cents), fc)


# -- thd functions: each runs inside one transaction -------------------------------------------------

def open_thd(conn, request: OpenRequest) -> Opened:
    """Read the balance, pick the tariff (claiming the first-caller offer), refuse what cannot pay, or write the row.

    A caller not on the profile's first-caller list gets the offer while it runs (its date window): the
    list's row is written here, in the session's transaction, so that two first calls at once cannot
    both have it; :func:`settle_thd` takes it back when charging never started. Free minutes need no
    credit and no account: a caller without one gets one with balance 0. A discounted tariff needs
    credit for its first increment, as any other.
    """
    p = request.profile
    found = _ACCOUNT.first(conn, profile=p.name, number=request.number)
    offer = p.first_caller
    first = (offer is not None and offer.offered_at(request.now_ms)
             and _FIRST_CALL.first(conn, profile=p.name, number=request.number) is None)
    tariff = tariff_for(p, request.caller_class, first_call=first)
    balance = 0 if found is None else found[1]
    if not can_start(tariff, balance):
        return Opened(request.session_id, tariff, balance, first,
                      refused="no account" if found is None else "balance too low")
    if first:
        try:
            with conn.begin_nested():
                _NEW_FIRST_CALLER.rowcount(conn, profile=p.name, number=request.number, first_call_ms=request.now_ms)
        except IntegrityError:  # a concurrent first call of the same caller got it
            first = False
            tariff = tariff_for(p, request.caller_class, first_call=False)
            if not can_start(tariff, balance):
                return Opened(request.session_id, tariff, balance, False,
                              refused="no account" if found is None else "balance too low")
    if found is None:   # free minutes for a caller who never topped up: an account to hold the session
        account = accounts.get_or_create(conn, p.name, request.number, request.now_ms)
        account_id, balance = account.id, account.balance_cents
    else:
        account_id = found[0]
    fc = tariff.first_caller
    _NEW_SESSION.rowcount(
        conn, id=request.session_id, account_id=account_id, profile=p.name, call_id=request.call_id,
        node_id=request.node_id, state="open", caller_class=request.caller_class.value,
        per_minute=str(tariff.per_minute), first_s=tariff.increment.first_s, next_s=tariff.increment.next_s,
        connect_charge_cents=tariff.connect_charge_cents,
        first_caller_per_minute=None if fc is None else str(fc.per_minute),
        first_caller_period_s=None if fc is None else fc.period_s,
        opened_ms=request.now_ms, lease_until_ms=request.lease_until_ms, renewed_ms=request.now_ms)
    return Opened(request.session_id, tariff, balance, first)


def debited_cents(conn, session_id: str) -> int:
    """What the ledger says the session was debited, net of its refunds (positive cents)."""
    return -int(_DEBITED.scalar(conn, sid=session_id))


def debit_ahead_thd(conn, request: DebitAhead, actor: str):
    """Take the debit ahead and record the paid time and lease, if the session is open.

    Four statements when the debit is taken: claim the session row, the
    conditional debit, its ledger row, the paid time. A request whose
    ``seq`` is not beyond the row's ``debit_seq`` is a repeat: the ledger row
    of ``<session>:<seq>`` answers it (and the ledger's UNIQUE(source,
    external_ref) would refuse a second row anyway).

    Returns (DebitOutcome, profile, number) — the latter two for the announcement."""
    claimed = _CLAIM.first(conn, sid=request.session_id, lease_until_ms=request.lease_until_ms,
                           now_ms=request.now_ms, start_ms=request.charging_started_ms)
    if claimed is None:
        return _unclaimed(conn, request.session_id), None, None
    account_id, call_id, seq_done = claimed
    if request.amount_cents == 0:
        # free minutes: nothing is taken and no ledger row written (no balance changes); only the paid
        # time moves, once per seq (a retry of a debit that was written finds its seq done)
        if request.seq > seq_done:
            _PAID.rowcount(conn, sid=request.session_id, paid_s=request.paid_s, seq=request.seq,
                           charged_cents=request.debited_cents, reserved_cents=0)
        return DebitOutcome(True, _BALANCE.first(conn, account_id=account_id)[0]), None, None
    ref = f"{request.session_id}:{request.seq}"
    if request.seq <= seq_done and ledger.find_entry(conn, SOURCE, ref) is not None:
        return DebitOutcome(True, _BALANCE.first(conn, account_id=account_id)[0], "duplicate"), None, None
    taken = _TAKE.first(conn, account_id=account_id, amount=request.amount_cents, now_ms=request.now_ms)
    if taken is None:
        return DebitOutcome(False, _BALANCE.first(conn, account_id=account_id)[0], "insufficient"), None, None
    balance, profile, number = taken
    ledger.write_row(conn, account_id=account_id, kind="call_debit", amount_cents=-request.amount_cents,
                     balance_after_cents=balance, source=SOURCE, external_ref=ref, actor=actor,
                     note=f"call {call_id}", call_session_id=request.session_id, at_ms=request.now_ms)
    _PAID.rowcount(conn, sid=request.session_id, paid_s=request.paid_s, seq=request.seq,
                   charged_cents=request.debited_cents, reserved_cents=request.amount_cents)
    return DebitOutcome(True, balance), profile, number


def _unclaimed(conn, session_id: str) -> DebitOutcome:
    """The answer to a debit on a session that is not open: settled, or none at all."""
    row = conn.execute(sa.select(CS.c.account_id).where(CS.c.id == session_id)).first()
    if row is None:
        return DebitOutcome(False, 0, "no session")
    return DebitOutcome(False, _BALANCE.first(conn, account_id=row.account_id)[0], "session settled")


def repeated_debit_thd(conn, request: DebitAhead) -> DebitOutcome:
    """The answer to a debit whose ledger row the UNIQUE constraint refused: it was taken before."""
    entry = ledger.find_entry(conn, SOURCE, f"{request.session_id}:{request.seq}")
    if entry is None:
        raise LookupError(f"debit {request.session_id}:{request.seq} refused, and no ledger row has it")
    return DebitOutcome(True, _BALANCE.first(conn, account_id=entry.account_id)[0], "duplicate")


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

    The claim (``open`` -> ``settled``) comes first and returns the row as it
    stands under it, so the time paid and the ledger read after it include any
    debit that committed before; a second settler finds nothing to claim and
    reads the first one's result. The :class:`Settlement` is made from what
    this transaction wrote, not read back.

    Returns (Settlement, announce) where ``announce`` is (profile, number, balance) when money moved."""
    claimed = _SETTLE_CLAIM.first(conn, sid=request.session_id, settled_ms=request.settled_ms,
                                  reason=request.reason)
    if claimed is None:
        if conn.execute(sa.select(CS.c.id).where(CS.c.id == request.session_id)).first() is None:
            raise KeyError(f"no call session {request.session_id}")
        return settlement_of(conn, request.session_id), None
    row = _SettleRow(*claimed)
    tariff = tariff_of(row)
    billed = 0
    if row.charging_started_ms is not None:
        duration_s = max(request.min_billed_s, _ceil_s(request.end_ms - int(row.charging_started_ms)))
        billed = min(billed_s(tariff.increment, duration_s), int(row.paid_s))
    charge = charge_cents(tariff, billed)
    _CHARGED.rowcount(conn, sid=request.session_id, charge=charge, billed=billed)
    refund = debited_cents(conn, request.session_id) - charge
    announce = None
    if refund > 0:
        balance, profile, number = _GIVE.first(conn, account_id=row.account_id, amount=refund,
                                               now_ms=request.settled_ms)
        ledger.write_row(conn, account_id=row.account_id, kind="call_refund", amount_cents=refund,
                         balance_after_cents=balance, source=SOURCE, external_ref=f"{request.session_id}:refund",
                         actor=actor, note=f"unused reservation of call {row.call_id}",
                         call_session_id=request.session_id, at_ms=request.settled_ms)
        announce = (profile, number, balance)
    else:
        balance, profile, number = _BALANCE.first(conn, account_id=row.account_id)
    if row.first_caller_per_minute is not None and row.charging_started_ms is None:
        # refused before the offer started (no agent, the caller hung up during the announcement): not used
        _UNCLAIM_FIRST_CALLER.rowcount(conn, profile=row.profile, number=number, opened_ms=row.opened_ms)
    _RECORD_CHARGE.rowcount(conn, call_id=row.call_id, sid=request.session_id, charge=charge, billed=billed)
    settlement = Settlement(request.session_id, row.call_id, row.profile, number, charge, max(refund, 0), billed,
                            request.reason, request.settled_ms, balance)
    return settlement, announce


def credits_thd(conn, session_id: str) -> Credits:
    """The ledger's credits to the session's account since the session opened, by cause."""
    topped_up, refunded = _CREDITS.first(conn, sid=session_id)
    return Credits(int(topped_up), int(refunded))


def settlement_of(conn, session_id: str) -> Settlement:
    """The settlement of a settled session, as its row and ledger say."""
    row = conn.execute(sa.select(CS).where(CS.c.id == session_id)).first()
    balance, _, number = _BALANCE.first(conn, account_id=row.account_id)
    refunded = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(L.c.amount_cents), 0)).where(
        L.c.call_session_id == session_id, L.c.kind == "call_refund")).scalar_one()
    return Settlement(row.id, row.call_id, row.profile, number, int(row.charged_cents), int(refunded),
                      int(row.billed_s), row.end_reason or "", int(row.settled_ms or 0), balance)


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

    def debit_ahead(self, request: DebitAhead) -> Deferred:
        def done(result):
            outcome, profile, number = result
            if profile is not None:
                self.store.announce(profile, number, outcome.balance_cents)
            return outcome

        def repeated(failure):
            failure.trap(IntegrityError)  # the ledger's UNIQUE refused a second row for this reference
            return self.store.run(repeated_debit_thd, request)
        return self.store.run_soon(debit_ahead_thd, request, self.actor).addCallbacks(done, repeated)

    def renew_leases(self, session_ids, now_ms: int, lease_until_ms: int) -> Deferred:
        return self.store.run_soon(renew_thd, tuple(session_ids), now_ms, lease_until_ms)

    def expired_sessions(self, now_ms: int, limit: int) -> Deferred:
        return self.store.run(expired_thd, now_ms, limit, self.lease_ms)

    def credits_since_open(self, session_id: str) -> Deferred:
        return self.store.run(credits_thd, session_id)

    def settle(self, request: SettleRequest) -> Deferred:
        def done(result):
            settlement, announce = result
            if announce is not None:
                self.store.announce(*announce)
            return settlement
        return self.store.run_soon(settle_thd, request, self.actor).addCallback(done)
