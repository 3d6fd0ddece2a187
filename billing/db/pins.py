"""Customer PIN attempts in the shared store: counted before the lookup, settled after, locked by rule.

Each function is a ``thd`` (a connection inside a transaction). The rule
(:class:`billing.pinguard.PinRule`) is passed in and decides on the times of the attempts that are
not ``right``; here are only the rows. On PostgreSQL a transaction-scoped advisory lock per source
address and per account makes "count, then add" one step for every node sharing the store; SQLite
has one writer.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from . import audit as _audit
from . import model

if TYPE_CHECKING:
    from billing.pinguard import PinRule

P = model.pin_attempts

#: the audit action of a lockout
LOCKOUT = "pin_lockout"


@dataclass(frozen=True)
class WrongPin:
    """What a wrong PIN did: ``locked`` its source or account (counting attempts still pending), and
    whether it was the one whose wrong PINs alone started a ``lockout`` (audited once per subject)."""

    locked: bool
    lockout: bool


@dataclass(frozen=True)
class PinAttempt:
    """One PIN typed, counted under its ``source`` address and (when the call named one) ``account``."""

    id: int
    at_ms: int
    profile: str
    source: str
    account: str | None
    call_id: str


def _scopes(profile: str, source: str, account: str | None) -> list[tuple[str, object]]:
    """(what is limited, which rows are its attempts): the source address, and the account if named."""
    scopes: list[tuple[str, object]] = [(f"source {source}", P.c.source == source)]
    if account is not None:
        scopes.append((f"account {account}", sa.and_(P.c.profile == profile, P.c.account == account)))
    return scopes


def _serialise(conn, subjects: list[str]) -> None:
    """One writer at a time per subject, across nodes (PostgreSQL; held to the end of the transaction)."""
    if conn.dialect.name == "postgresql":
        for subject in sorted(subjects):
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": "prepaid pin " + subject})


def _failures_ms(conn, where, since_ms: int, *, wrong_only: bool = False, but: int | None = None) -> list[int]:
    """The times of the attempts that count: not right (pending ones too), or ``wrong_only``."""
    q = sa.select(P.c.at_ms).where(where, P.c.at_ms >= since_ms,
                                   P.c.outcome == "wrong" if wrong_only else P.c.outcome != "right")
    if but is not None:
        q = q.where(P.c.id != but)
    return [row.at_ms for row in conn.execute(q)]


def locked(conn, rule: "PinRule", profile: str, source: str, account: str | None, *, now_ms: int) -> bool:
    """Whether the source or the account is locked at ``now_ms``."""
    since_ms = now_ms - rule.reach_ms()
    return any(rule.locked(_failures_ms(conn, where, since_ms), now_ms)
               for _, where in _scopes(profile, source, account))


def attempt(conn, rule: "PinRule", profile: str, source: str, account: str | None, call_id: str, *,
            now_ms: int) -> PinAttempt | None:
    """Count a PIN about to be looked up (``pending``), or None when the source or account is locked.

    Attempts older than the rule's reach are forgotten here.
    """
    scopes = _scopes(profile, source, account)
    _serialise(conn, [subject for subject, _ in scopes])
    if locked(conn, rule, profile, source, account, now_ms=now_ms):
        return None
    conn.execute(sa.delete(P).where(P.c.at_ms < now_ms - rule.reach_ms()))
    values = dict(at_ms=now_ms, profile=profile, source=source, account=account, call_id=call_id,
                  outcome="pending")
    new_id = conn.execute(sa.insert(P).values(**values).returning(P.c.id)).scalar_one()
    return PinAttempt(new_id, now_ms, profile, source, account, call_id)


def wrong(conn, rule: "PinRule", tried: PinAttempt, *, now_ms: int, actor: str) -> WrongPin:
    """The attempt's PIN was wrong: is its source or account locked now, and did this start the lockout?

    A subject whose wrong PINs reach the limit with this one gets an audit row (``pin_lockout``), in this
    transaction; parallel attempts still pending lock too, but audit nothing until they turn out wrong.
    """
    scopes = _scopes(tried.profile, tried.source, tried.account)
    _serialise(conn, [subject for subject, _ in scopes])
    conn.execute(sa.update(P).where(P.c.id == tried.id).values(outcome="wrong"))
    since_ms = now_ms - rule.reach_ms()
    locked_now = lockout = False
    for subject, where in scopes:
        locked_now = locked_now or rule.locked(_failures_ms(conn, where, since_ms), now_ms)
        failures = _failures_ms(conn, where, since_ms, wrong_only=True)
        if not rule.locked(failures, now_ms):
            continue
        if rule.locked(_failures_ms(conn, where, since_ms, wrong_only=True, but=tried.id), now_ms):
            continue          # locked already (another call's wrong PIN came first): audited then
        lockout = True
        until_ms = rule.locked_until_ms(failures)
        _audit.add(conn, _audit.AuditEntry(
            at_ms=now_ms, actor=actor, action=LOCKOUT, subject=subject, profile=tried.profile,
            source=tried.source,
            detail=(f"{rule.max_failures} wrong PINs within {rule.window_s} s; "
                    f"PIN entry locked for {rule.lockout_s} s (call {tried.call_id})"),
            before="unlocked", after=f"locked until {_iso(until_ms)}"))
    return WrongPin(locked_now or lockout, lockout)


def right(conn, tried: PinAttempt) -> None:
    """The attempt's PIN was right: it stops counting (nothing else is cleared)."""
    conn.execute(sa.update(P).where(P.c.id == tried.id).values(outcome="right"))


def _iso(at_ms: int) -> str:
    return datetime.datetime.fromtimestamp(at_ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
