"""Accounts: find one, create one on first credit (with its PIN), renumber.

Each function is a ``thd``: it takes an open connection inside a transaction
and returns plain dataclasses.

A renumber moves the account (balance, ledger, sessions, first-call mark) and leaves the call
records alone: a record says which number the carrier presented for that call, which is what
the itemised bill and any dispute rest on. It writes its audit row in its own transaction.
"""

from __future__ import annotations

import re
import secrets

import sqlalchemy as sa

from ..money import format_cents
from . import audit, model
from .rows import Account, NoAccount, NumberTaken, RenumberResult, StoreError

A = model.accounts

#: what an account's number must look like: E.164 (callers normalise with billing.numbers first)
E164 = re.compile(r"^\+[1-9][0-9]{5,15}$")

#: digits of a customer PIN (for callers who withhold their number)
PIN_DIGITS = 6


def to_account(row) -> Account:
    """An :class:`Account` from an ``accounts`` row."""
    return Account(id=row.id, profile=row.profile, number=row.number, balance_cents=row.balance_cents,
                   pin=row.pin, created_ms=row.created_ms, updated_ms=row.updated_ms)


def find(conn, profile: str, number: str, *, for_update: bool = False) -> Account | None:
    """The account of (profile, number), or None; ``for_update`` locks its row (PostgreSQL)."""
    q = sa.select(A).where(A.c.profile == profile, A.c.number == number)
    if for_update:
        q = q.with_for_update()
    row = conn.execute(q).first()
    return to_account(row) if row is not None else None


def by_id(conn, account_id: int) -> Account:
    """The account with this id (it must exist)."""
    return to_account(conn.execute(sa.select(A).where(A.c.id == account_id)).one())


def by_pin(conn, profile: str, pin: str) -> Account | None:
    """The account whose customer PIN under ``profile`` is ``pin``, or None."""
    row = conn.execute(sa.select(A).where(A.c.profile == profile, A.c.pin == pin)).first()
    return to_account(row) if row is not None else None


def _new_pin(conn, profile: str) -> str:
    for _ in range(20):
        pin = "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))
        if pin[0] != "0" and by_pin(conn, profile, pin) is None:
            return pin
    raise StoreError(f"no free PIN found for profile {profile!r}")


def get_or_create(conn, profile: str, number: str, now_ms: int) -> Account:
    """The account of (profile, number), created with balance 0 and a fresh PIN if it has none.

    Two creators at once: the UNIQUE(profile, number) lets one insert win, the
    other does nothing and reads the winner's row.
    """
    found = find(conn, profile, number)
    if found is not None:
        return found
    if not E164.match(number or "") or not profile:
        raise StoreError(f"an account needs a profile and an E.164 number (+4915112345678), not {number!r}")
    values = dict(profile=profile, number=number, balance_cents=0, pin=_new_pin(conn, profile),
                  created_ms=now_ms, updated_ms=now_ms)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(A).values(**values).on_conflict_do_nothing(index_elements=["profile", "number"]))
    found = find(conn, profile, number)
    assert found is not None
    return found


def require(conn, profile: str, number: str, *, for_update: bool = False) -> Account:
    """Like :func:`find`, but a missing account raises :class:`NoAccount`."""
    found = find(conn, profile, number, for_update=for_update)
    if found is None:
        raise NoAccount(f"no account for {number} in profile {profile!r}")
    return found


def renumber(conn, profile: str, old: str, new: str, *, merge: bool, now_ms: int, actor: str,
             source: str = "") -> RenumberResult:
    """Move the account of ``old`` (balance, ledger, sessions, first-call mark) to ``new``; audited.

    When ``new`` has an account: refused with :class:`NumberTaken` unless ``merge``;
    merging moves the old account's ledger rows onto the new account, adds its
    balance, and deletes the old account (refused while it has an open call).
    Call records keep the number they were made from (``call_records`` counts the old
    number's, left as they were). The audit row (action ``renumber`` or ``merge``, by
    ``actor`` from ``source``) names both numbers and balances before and after.
    """
    if old == new:
        raise StoreError("the old and the new number are the same")
    src = require(conn, profile, old, for_update=True)
    dst = find(conn, profile, new, for_update=True)
    L, R, S, F, SF = model.ledger, model.call_records, model.call_sessions, model.first_callers, model.shortfalls
    records = conn.execute(sa.select(sa.func.count()).select_from(R)
                           .where(R.c.profile == profile, R.c.caller == old)).scalar()
    if dst is not None and not merge:
        raise NumberTaken(f"{new} already has an account in profile {profile!r} (merge to join them)")
    first_old = conn.execute(sa.select(F).where(F.c.profile == profile, F.c.number == old)).first()
    if first_old is not None:
        first_new = conn.execute(sa.select(F).where(F.c.profile == profile, F.c.number == new)).first()
        conn.execute(sa.delete(F).where(F.c.profile == profile, F.c.number == old))
        if first_new is None:
            conn.execute(sa.insert(F).values(profile=profile, number=new, first_call_ms=first_old.first_call_ms))
    if dst is None:
        conn.execute(sa.update(A).where(A.c.id == src.id).values(number=new, updated_ms=now_ms))
        rows = conn.execute(sa.select(sa.func.count()).select_from(L).where(L.c.account_id == src.id)).scalar()
        result = RenumberResult(by_id(conn, src.id), merged=False, ledger_rows=rows, call_records=records)
    else:
        open_calls = conn.execute(sa.select(sa.func.count()).select_from(S)
                                  .where(S.c.account_id == src.id, S.c.state == "open")).scalar()
        if open_calls:
            raise StoreError(f"{old} has {open_calls} call(s) in progress; merge after they end")
        rows = conn.execute(sa.update(L).where(L.c.account_id == src.id).values(account_id=dst.id)).rowcount
        conn.execute(sa.update(S).where(S.c.account_id == src.id).values(account_id=dst.id))
        conn.execute(sa.update(SF).where(SF.c.account_id == src.id).values(account_id=dst.id))
        conn.execute(sa.update(A).where(A.c.id == dst.id)
                     .values(balance_cents=A.c.balance_cents + src.balance_cents, updated_ms=now_ms))
        conn.execute(sa.delete(A).where(A.c.id == src.id))
        result = RenumberResult(by_id(conn, dst.id), merged=True, ledger_rows=rows, call_records=records)
    before = [f"{old}: {format_cents(src.balance_cents)}"]
    if dst is not None:
        before.append(f"{new}: {format_cents(dst.balance_cents)}")
    audit.add(conn, audit.AuditEntry(
        at_ms=now_ms, actor=actor, action="merge" if result.merged else "renumber", subject=old, profile=profile,
        source=source, detail=f"{old} -> {new}; {rows} ledger row(s) moved; {records} call record(s) kept",
        before="; ".join(before), after=f"{new}: {format_cents(result.account.balance_cents)}"))
    return result


def changed_since(conn, since_ms: int, *, limit: int = 10_000) -> list[tuple[str, str, int, int]]:
    """(profile, number, balance_cents, updated_ms) of the accounts changed at or after ``since_ms``."""
    q = (sa.select(A.c.profile, A.c.number, A.c.balance_cents, A.c.updated_ms)
         .where(A.c.updated_ms >= since_ms).order_by(A.c.updated_ms).limit(limit))
    return [(r.profile, r.number, r.balance_cents, r.updated_ms) for r in conn.execute(q)]
