"""The first-caller list: who has used a profile's first-caller offer, and when.

A row of ``first_callers`` is written by :func:`billing.db.sessions.open_thd` when a call opens with the
offer (and taken back when that call never started charging), so a caller is on the list once the offer
was used. Operators also manage the list (the portal's "First callers" page): remove an entry, so that the
number gets the offer again, or import numbers that had it elsewhere. Each such change writes an audit
row in its own transaction; nothing here touches money.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from . import audit, model

FC = model.first_callers

#: audit actions
ADDED = "first_caller_add"
REMOVED = "first_caller_remove"


@dataclass(frozen=True)
class FirstCaller:
    """A number on a profile's first-caller list, since ``first_call_ms`` (its first call, or its import)."""

    profile: str
    number: str
    first_call_ms: int


@dataclass(frozen=True)
class FirstCallerPage:
    """One page of the list, newest first, and how many entries match in all."""

    rows: tuple[FirstCaller, ...]
    total: int


@dataclass(frozen=True)
class ImportResult:
    """What an import did: the numbers added, and those that were on the list already."""

    added: tuple[str, ...]
    already: tuple[str, ...]


def _matching(profile: str, exact: str | None, digits: str):
    where = [FC.c.profile == profile]
    if exact is not None:
        where.append(FC.c.number == exact)
    elif digits:
        where.append(FC.c.number.like(f"%{digits}%"))
    return where


def search_digits(text: str) -> str:
    """The digits of a partial number as they appear in E.164: "0151 23" -> "15123", "+49 30" -> "4930"."""
    digits = re.sub(r"\D", "", text)
    if digits.startswith("00"):
        return digits[2:]
    if digits.startswith("0"):
        return digits[1:]
    return digits


def listing(conn, profile: str, *, exact: str | None = None, digits: str = "", offset: int = 0,
            limit: int = 50) -> FirstCallerPage:
    """The entries of ``profile``: the number ``exact`` (E.164), or those containing ``digits``, or all."""
    where = _matching(profile, exact, digits)
    total = conn.execute(sa.select(sa.func.count()).select_from(FC).where(*where)).scalar_one()
    rows = conn.execute(sa.select(FC.c.profile, FC.c.number, FC.c.first_call_ms).where(*where)
                        .order_by(FC.c.first_call_ms.desc(), FC.c.number).offset(offset).limit(limit)).all()
    return FirstCallerPage(tuple(FirstCaller(r.profile, r.number, int(r.first_call_ms)) for r in rows), int(total))


def remove(conn, profile: str, number: str, *, actor: str, source: str, now_ms: int) -> FirstCaller | None:
    """Take ``number`` off the list (it gets the offer again); the entry removed, or None when it was not on it."""
    row = conn.execute(sa.select(FC.c.first_call_ms).where(FC.c.profile == profile, FC.c.number == number)).first()
    if row is None:
        return None
    conn.execute(sa.delete(FC).where(FC.c.profile == profile, FC.c.number == number))
    audit.add(conn, audit.AuditEntry(at_ms=now_ms, actor=actor, action=REMOVED, subject=number, profile=profile,
                                     source=source, before=f"first call {int(row.first_call_ms)}",
                                     after="not on the list"))
    return FirstCaller(profile, number, int(row.first_call_ms))


def add(conn, profile: str, numbers: tuple[str, ...], *, actor: str, source: str, now_ms: int) -> ImportResult:
    """Put ``numbers`` (E.164) on the list as of ``now_ms``, each with an audit row; those on it stay as they are."""
    added: list[str] = []
    already: list[str] = []
    for number in dict.fromkeys(numbers):
        if conn.execute(sa.select(FC.c.number).where(FC.c.profile == profile, FC.c.number == number)).first():
            already.append(number)
            continue
        conn.execute(sa.insert(FC).values(profile=profile, number=number, first_call_ms=now_ms))
        audit.add(conn, audit.AuditEntry(at_ms=now_ms, actor=actor, action=ADDED, subject=number, profile=profile,
                                         source=source, detail="imported", before="not on the list",
                                         after=f"first call {now_ms}"))
        added.append(number)
    return ImportResult(tuple(added), tuple(already))
