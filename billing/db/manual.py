"""Manual money: a top-up, credit or debit that a person books (portal, ``prepaid``, the balance API).

One transaction holds the balance change, its ledger rows and an audit row saying who booked it,
from where, and the balance before and after, so that none of them commits without the others.
A manual transaction is bounded by the profile's ``max_manual_cents`` (the amount asked for, a
top-up's bonus not counted), and a debit never takes a balance below zero. The reference of the
first line makes it happen once: a second booking with it (a double submit, a retried request)
answers ``duplicate`` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from . import accounts, audit
from .ledger import CREDIT_ATTEMPTS, CREDIT_KINDS, DEBIT_KINDS, Line, apply, find_entry
from .rows import Account, LedgerEntry, StoreError


@dataclass(frozen=True)
class Manual:
    """What a person asked to book: ``lines`` all credits (> 0) or one debit (< 0); who and from where."""

    profile: str
    number: str
    lines: tuple[Line, ...]
    limit_cents: int
    source: str          # the ledger source ("manual", "api")
    actor: str           # the ledger row's actor
    note: str
    audit_actor: str     # portal:<user>, cli, api:<key id>
    address: str         # where the request came from ("" when local)

    @property
    def amount_cents(self) -> int:
        """The amount asked for (signed): the first line's, without a bonus."""
        return self.lines[0].amount_cents


@dataclass(frozen=True)
class ManualResult:
    """``reason`` None when booked, else ``over_limit``, ``insufficient``, ``no_account`` or ``duplicate``
    (nothing changed). ``before_cents`` is the balance before (0 for a new account)."""

    applied: bool
    reason: str | None
    account: Account | None
    entries: tuple[LedgerEntry, ...] = ()
    before_cents: int = 0

    @property
    def bonus_cents(self) -> int:
        return sum(e.amount_cents for e in self.entries if e.kind == "bonus")


def over_limit(amount_cents: int, limit_cents: int) -> bool:
    """True when a manual amount (either sign) is more than the profile allows."""
    return abs(amount_cents) > limit_cents


def _check(m: Manual) -> None:
    credit = m.amount_cents > 0
    for line in m.lines:
        if (line.amount_cents > 0) != credit or line.amount_cents == 0:
            raise StoreError("a manual transaction is all credits or one debit, none of 0 cents")
        if line.kind not in (CREDIT_KINDS if credit else DEBIT_KINDS):
            raise StoreError(f"ledger kind {line.kind!r} cannot {'credit' if credit else 'debit'}")
    if not credit and len(m.lines) != 1:
        raise StoreError("a manual debit is one line")


def book(engine, m: Manual, *, now_ms: int) -> ManualResult:
    """Book ``m`` with its audit row in one transaction, or say why not (then nothing is written)."""
    _check(m)
    if over_limit(m.amount_cents, m.limit_cents):
        return ManualResult(False, "over_limit", None)
    for attempt in range(CREDIT_ATTEMPTS):
        try:
            with engine.begin() as conn:
                return _book(conn, m, now_ms)
        except IntegrityError:  # the same reference booked by another connection, or a new account raced
            with engine.begin() as conn:
                if find_entry(conn, m.source, m.lines[0].external_ref) is not None:
                    return ManualResult(False, "duplicate", accounts.find(conn, m.profile, m.number))
            if attempt == CREDIT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _action(m: Manual) -> str:
    """The audit action: manual_topup, manual_credit / manual_debit (portal, CLI), api_credit / api_debit."""
    if m.lines[0].kind == "topup":
        return "manual_topup"
    return f"{'api' if m.source == 'api' else 'manual'}_{'credit' if m.amount_cents > 0 else 'debit'}"


def _book(conn, m: Manual, now_ms: int) -> ManualResult:
    first = m.lines[0]
    if find_entry(conn, m.source, first.external_ref) is not None:
        return ManualResult(False, "duplicate", accounts.find(conn, m.profile, m.number))
    if m.amount_cents > 0:
        account = accounts.get_or_create(conn, m.profile, m.number, now_ms)
    else:
        account = accounts.find(conn, m.profile, m.number)
        if account is None:
            return ManualResult(False, "no_account", None)
    before = account.balance_cents
    entries = []
    for line in m.lines:
        entry = apply(conn, account, line, source=m.source, actor=m.actor, note=m.note, now_ms=now_ms)
        if entry is None:
            return ManualResult(False, "insufficient", accounts.find(conn, m.profile, m.number), before_cents=before)
        entries.append(entry)
    audit.add(conn, audit.AuditEntry(
        at_ms=now_ms, actor=m.audit_actor, action=_action(m), subject=m.number, profile=m.profile,
        source=m.address[:64], before=str(before), after=str(entries[-1].balance_after_cents),
        detail=" ".join(f"{e.kind}={e.amount_cents}" for e in entries)
        + f" ref={first.external_ref} by={m.actor} note={m.note}"))
    return ManualResult(True, None, accounts.by_id(conn, account.id), tuple(entries), before)
