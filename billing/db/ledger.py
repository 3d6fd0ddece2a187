"""The ledger: every change of a balance is a row, written in the same transaction as the change.

Credits and top-ups, debits, reversals, and the queries over them. The
balance of an account always equals the sum of its ledger rows. A row's
(source, external_ref) is unique, so a repeated notification or a retried
debit changes nothing: the database's UNIQUE constraint decides, also between
two nodes at once. A credit for a payment also carries the payment's id, and
(payment_id, kind) is unique too: a payment is credited once, whichever and
however many of the provider's ids (captures, orders) name it.

Functions taking ``engine`` run their own transaction(s) (a lost race on a
UNIQUE constraint rolls back and is answered from a fresh read); functions
taking ``conn`` run inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from . import accounts, model
from .prepared import Prepared
from .rows import Account, CreditResult, CustomerRow, DebitResult, LedgerEntry, ReverseResult, Shortfall, StoreError

A, L, SF = model.accounts, model.ledger, model.shortfalls

#: kinds that add to a balance / take from it (``correction`` may go either way)
CREDIT_KINDS = frozenset({"topup", "bonus", "manual", "api_credit", "call_refund", "correction"})
DEBIT_KINDS = frozenset({"manual", "api_debit", "call_debit", "reversal", "correction"})

#: how often a credit that lost a race other than a duplicate (a new account, a PIN) is tried again
CREDIT_ATTEMPTS = 3


@dataclass(frozen=True)
class Line:
    """One ledger row to write: ``amount_cents`` signed."""

    kind: str
    amount_cents: int
    external_ref: str


def to_entry(row) -> LedgerEntry:
    """A :class:`LedgerEntry` from a ledger row joined with its account's profile and number."""
    return LedgerEntry(id=row.id, account_id=row.account_id, profile=row.profile, number=row.number,
                       kind=row.kind, amount_cents=row.amount_cents, balance_after_cents=row.balance_after_cents,
                       source=row.source, external_ref=row.external_ref, actor=row.actor, note=row.note,
                       call_session_id=row.call_session_id, at_ms=row.at_ms, payment_id=row.payment_id)


def _entries_query():
    return sa.select(L, A.c.profile, A.c.number).join(A, A.c.id == L.c.account_id)


def find_entry(conn, source: str, external_ref: str) -> LedgerEntry | None:
    """The ledger row of (source, external_ref), or None."""
    row = conn.execute(_entries_query().where(L.c.source == source, L.c.external_ref == external_ref)).first()
    return to_entry(row) if row is not None else None


def payment_entry(conn, payment_id: int, kind: str = "topup") -> LedgerEntry | None:
    """The ledger row of ``kind`` that credited payment ``payment_id``, or None."""
    row = conn.execute(_entries_query().where(L.c.payment_id == payment_id, L.c.kind == kind)).first()
    return to_entry(row) if row is not None else None


def _credited(conn, source: str, line: Line, payment_id: int | None) -> LedgerEntry | None:
    """The row that already booked this credit: same (source, external_ref), or same payment and kind."""
    seen = find_entry(conn, source, line.external_ref)
    if seen is None and payment_id is not None:
        seen = payment_entry(conn, payment_id, line.kind)
    return seen


def _check_kind(kind: str, allowed: frozenset[str]) -> None:
    if kind not in allowed:
        raise StoreError(f"ledger kind {kind!r} is not one of {', '.join(sorted(allowed))}")


_LEDGER_INSERT = sa.insert(L).returning(L.c.id)
_ROW_COLUMNS = ("account_id", "kind", "amount_cents", "balance_after_cents", "source", "external_ref", "actor",
                "note", "call_session_id", "at_ms")
_ROW = Prepared(sa.insert(L).values({name: sa.bindparam(name) for name in _ROW_COLUMNS}))


def write_row(conn, *, account_id: int, kind: str, amount_cents: int, balance_after_cents: int, source: str,
              external_ref: str, actor: str, note: str, call_session_id: str | None, at_ms: int) -> None:
    """Write one ledger row for a balance change the caller has just made (the hot path: no id read back).

    A repeated (source, external_ref) raises IntegrityError from the ledger's UNIQUE constraint.
    """
    _ROW.rowcount(conn, account_id=account_id, kind=kind, amount_cents=amount_cents,
                  balance_after_cents=balance_after_cents, source=source, external_ref=external_ref, actor=actor,
                  note=note, call_session_id=call_session_id, at_ms=at_ms)
_APPLY_UPDATE = (sa.update(A).where(A.c.id == sa.bindparam("p_id"))
                 .values(balance_cents=A.c.balance_cents + sa.bindparam("p_amount"), updated_ms=sa.bindparam("p_now"))
                 .returning(A.c.balance_cents))
_APPLY_UPDATE_COVERED = _APPLY_UPDATE.where(A.c.balance_cents >= sa.bindparam("p_need"))


def apply(conn, account: Account, line: Line, *, source: str, actor: str, note: str, now_ms: int,
          call_session_id: str | None = None, payment_id: int | None = None) -> LedgerEntry | None:
    """Change the balance by ``line.amount_cents`` and write its row, in the caller's transaction.

    A negative amount is the conditional update: None (nothing written) when
    the balance does not cover it. A repeated (source, external_ref), or a
    second row of one kind for one payment, raises IntegrityError from the
    ledger's UNIQUE constraints.
    """
    amount = line.amount_cents
    params = {"p_id": account.id, "p_amount": amount, "p_now": now_ms}
    if amount < 0:
        balance = conn.execute(_APPLY_UPDATE_COVERED, dict(params, p_need=-amount)).scalar()
    else:
        balance = conn.execute(_APPLY_UPDATE, params).scalar()
    if balance is None:
        return None
    values = dict(account_id=account.id, kind=line.kind, amount_cents=amount, balance_after_cents=balance,
                  source=source, external_ref=line.external_ref, actor=actor, note=note,
                  call_session_id=call_session_id, at_ms=now_ms, payment_id=payment_id)
    entry_id = conn.execute(_LEDGER_INSERT, values).scalar_one()
    return LedgerEntry(id=entry_id, profile=account.profile, number=account.number, **values)


def credit(engine, profile: str, number: str, lines: tuple[Line, ...], *, source: str, actor: str,
           note: str, now_ms: int, payment_id: int | None = None) -> CreditResult:
    """Credit ``lines`` (each amount > 0) to (profile, number), creating the account on its first credit.

    Once per (source, first line's external_ref), and with ``payment_id`` once
    per payment (every line's row carries it): a repeat, also one racing this
    one on another connection or node, or another external_ref for a payment
    already credited, answers ``applied=False`` and changes nothing.
    """
    for line in lines:
        _check_kind(line.kind, CREDIT_KINDS)
        if line.amount_cents <= 0:
            raise StoreError(f"a credit must be more than 0 cents, not {line.amount_cents}")
    first = lines[0]
    for attempt in range(CREDIT_ATTEMPTS):
        try:
            with engine.begin() as conn:
                seen = _credited(conn, source, first, payment_id)
                if seen is not None:
                    return CreditResult(False, accounts.by_id(conn, seen.account_id), ())
                account = accounts.get_or_create(conn, profile, number, now_ms)
                entries = tuple(apply(conn, account, line, source=source, actor=actor, note=note, now_ms=now_ms,
                                      payment_id=payment_id)
                                for line in lines)
                return CreditResult(True, accounts.by_id(conn, account.id), entries)
        except IntegrityError:
            with engine.begin() as conn:
                seen = _credited(conn, source, first, payment_id)
                if seen is not None:
                    return CreditResult(False, accounts.by_id(conn, seen.account_id), ())
            if attempt == CREDIT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


# the debit's two statements, built once (a debit is the hot path of every running call)
_DEBIT_UPDATE = (sa.update(A)
                 .where(A.c.profile == sa.bindparam("p_profile"), A.c.number == sa.bindparam("p_number"),
                        A.c.balance_cents >= sa.bindparam("p_amount"))
                 .values(balance_cents=A.c.balance_cents - sa.bindparam("p_amount"),
                         updated_ms=sa.bindparam("p_now"))
                 .returning(*A.c))
def debit(engine, profile: str, number: str, amount_cents: int, *, kind: str, source: str, external_ref: str,
          actor: str, note: str, now_ms: int, call_session_id: str | None = None) -> DebitResult:
    """Take ``amount_cents`` (> 0) from (profile, number) if the balance covers it, else change nothing.

    One conditional UPDATE (``... WHERE balance_cents >= :x``) and its ledger
    row, in one transaction. When nothing was taken, a fresh read says why:
    no account, a repeated (source, external_ref) (also a retry of a debit
    whose answer was lost), or a balance that does not cover it.
    """
    _check_kind(kind, DEBIT_KINDS)
    if amount_cents <= 0:
        raise StoreError(f"a debit must be more than 0 cents, not {amount_cents}")
    try:
        with engine.begin() as conn:
            row = conn.execute(_DEBIT_UPDATE, {"p_profile": profile, "p_number": number, "p_amount": amount_cents,
                                               "p_now": now_ms}).first()
            if row is None:
                account = accounts.find(conn, profile, number)
                if account is None:
                    return DebitResult(False, "no_account", None)
                if find_entry(conn, source, external_ref) is not None:
                    return DebitResult(False, "duplicate", account)
                return DebitResult(False, "insufficient", account)
            account = accounts.to_account(row)
            values = dict(account_id=account.id, kind=kind, amount_cents=-amount_cents,
                          balance_after_cents=account.balance_cents, source=source, external_ref=external_ref,
                          actor=actor, note=note, call_session_id=call_session_id, at_ms=now_ms)
            entry_id = conn.execute(_LEDGER_INSERT, values).scalar_one()
            return DebitResult(True, None, account, LedgerEntry(id=entry_id, profile=profile, number=number, **values))
    except IntegrityError:
        with engine.begin() as conn:
            return DebitResult(False, "duplicate", accounts.find(conn, profile, number))


def reverse(engine, profile: str, number: str, amount_cents: int, *, source: str, external_ref: str,
            actor: str, note: str, now_ms: int) -> ReverseResult:
    """Take back ``amount_cents`` (a refund or chargeback of a top-up) as far as the balance allows.

    What the balance cannot cover is written to ``shortfalls`` for the
    statement. Once per (source, external_ref), like a credit.
    """
    if amount_cents <= 0:
        raise StoreError(f"a reversal must be more than 0 cents, not {amount_cents}")
    try:
        with engine.begin() as conn:
            account = accounts.find(conn, profile, number, for_update=True)
            if account is None:
                return ReverseResult(False, None, 0, amount_cents)
            seen = find_entry(conn, source, external_ref)
            short = conn.execute(sa.select(SF).where(SF.c.source == source, SF.c.external_ref == external_ref)).first()
            if seen is not None or short is not None:
                return ReverseResult(False, account, 0, 0)
            take = min(account.balance_cents, amount_cents)
            entry = None
            if take:
                entry = apply(conn, account, Line("reversal", -take, external_ref), source=source, actor=actor,
                              note=note, now_ms=now_ms)
                if entry is None:  # cannot happen: the row is locked (PostgreSQL) or the database is (SQLite)
                    raise StoreError("the balance changed under a reversal; try again")
            shortfall = amount_cents - take
            if shortfall:
                conn.execute(sa.insert(SF).values(account_id=account.id, source=source, external_ref=external_ref,
                                                  amount_cents=shortfall, at_ms=now_ms))
            return ReverseResult(True, accounts.by_id(conn, account.id), take, shortfall, entry)
    except IntegrityError:
        with engine.begin() as conn:
            return ReverseResult(False, accounts.find(conn, profile, number), 0, 0)


def transactions(conn, *, profile: str | None = None, number: str | None = None,
                 kinds: tuple[str, ...] | None = None, since_ms: int | None = None, until_ms: int | None = None,
                 limit: int | None = None, offset: int = 0) -> list[LedgerEntry]:
    """Ledger rows matching every filter given, newest first (``until_ms`` is exclusive), ``offset`` rows on."""
    q = _entries_query()
    if profile is not None:
        q = q.where(A.c.profile == profile)
    if number is not None:
        q = q.where(A.c.number == number)
    if kinds:
        q = q.where(L.c.kind.in_(kinds))
    if since_ms is not None:
        q = q.where(L.c.at_ms >= since_ms)
    if until_ms is not None:
        q = q.where(L.c.at_ms < until_ms)
    q = q.order_by(L.c.at_ms.desc(), L.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    if offset:
        q = q.offset(offset)
    return [to_entry(row) for row in conn.execute(q)]


@dataclass(frozen=True)
class Booking:
    """A ledger row as a person reads it: a top-up with the bonus row that came with it (else None)."""

    entry: LedgerEntry
    bonus: LedgerEntry | None = None

    @property
    def balance_after_cents(self) -> int:
        """The balance once the whole booking (a top-up and its bonus) was made."""
        return (self.bonus or self.entry).balance_after_cents


def bookings(conn, *, profile: str, number: str | None = None, kinds: tuple[str, ...] | None = None,
             since_ms: int | None = None, until_ms: int | None = None, limit: int | None = None,
             offset: int = 0) -> list[Booking]:
    """Like :func:`transactions` under one profile, but bonus rows ride with their top-up (same source,
    reference ``<top-up's>#bonus``) instead of standing alone; ``kinds`` never needs to name ``bonus``."""
    kinds = tuple(k for k in (kinds or sorted(CREDIT_KINDS | DEBIT_KINDS)) if k != "bonus")
    entries = transactions(conn, profile=profile, number=number, kinds=kinds, since_ms=since_ms,
                           until_ms=until_ms, limit=limit, offset=offset)
    refs = [f"{e.external_ref}#bonus" for e in entries if e.kind == "topup"]
    found: dict[tuple[str, str], LedgerEntry] = {}
    for chunk in range(0, len(refs), 500):
        q = _entries_query().where(A.c.profile == profile, L.c.kind == "bonus",
                                   L.c.external_ref.in_(refs[chunk:chunk + 500]))
        for row in conn.execute(q):
            found[(row.source, row.external_ref)] = to_entry(row)
    return [Booking(e, found.get((e.source, f"{e.external_ref}#bonus")) if e.kind == "topup" else None)
            for e in entries]


def customers(conn, *, profile: str | None = None, number: str | None = None) -> list[CustomerRow]:
    """Accounts with their number of top-ups and the last top-up, by profile and number."""
    topups = (sa.select(L.c.account_id, sa.func.count().label("n"), sa.func.max(L.c.at_ms).label("last"))
              .where(L.c.kind == "topup").group_by(L.c.account_id).subquery())
    q = (sa.select(A.c.profile, A.c.number, A.c.balance_cents, topups.c.n, topups.c.last)
         .outerjoin(topups, topups.c.account_id == A.c.id).order_by(A.c.profile, A.c.number))
    if profile is not None:
        q = q.where(A.c.profile == profile)
    if number is not None:
        q = q.where(A.c.number == number)
    return [CustomerRow(r.profile, r.number, r.balance_cents, r.n or 0, r.last) for r in conn.execute(q)]


def shortfalls(conn, *, profile: str | None = None, since_ms: int | None = None,
               until_ms: int | None = None) -> list[Shortfall]:
    """Reversals the balance could not cover, oldest first."""
    q = sa.select(SF).join(A, A.c.id == SF.c.account_id).order_by(SF.c.at_ms, SF.c.id)
    if profile is not None:
        q = q.where(A.c.profile == profile)
    if since_ms is not None:
        q = q.where(SF.c.at_ms >= since_ms)
    if until_ms is not None:
        q = q.where(SF.c.at_ms < until_ms)
    return [Shortfall(r.id, r.account_id, r.source, r.external_ref, r.amount_cents, r.at_ms)
            for r in conn.execute(q)]


def ledger_sum(conn, account_id: int) -> int:
    """The sum of an account's ledger rows (which must equal its balance)."""
    return conn.execute(sa.select(sa.func.coalesce(sa.func.sum(L.c.amount_cents), 0))
                        .where(L.c.account_id == account_id)).scalar_one()
