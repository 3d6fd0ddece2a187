"""What a provider's portal overview shows of one profile: calls, billed time and top-ups over a span,
the accounts with credit, and the same counts per day.

Spans are half-open ``[since_ms, until_ms)``; the caller cuts days and months in the profile's time zone
and hands the boundaries in, so that a day here is the provider's day (23 or 25 hours around a DST
change). Calls are counted from the call records (by the time of their INVITE), top-ups from the ledger
(kind ``topup``; bonuses are not money paid).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from . import model

A, L, R = model.accounts, model.ledger, model.call_records


@dataclass(frozen=True)
class Totals:
    """Calls, their billed seconds and the top-ups (count and money) within one span."""

    calls: int
    billed_s: int
    topups: int
    topup_cents: int


@dataclass(frozen=True)
class DayCounts:
    """The calls and top-ups of the day that begins at ``start_ms``."""

    start_ms: int
    calls: int
    topups: int
    topup_cents: int


@dataclass(frozen=True)
class Overview:
    """A profile at a glance: today, this month, the accounts with credit and the last days."""

    today: Totals
    month: Totals
    accounts_with_credit: int
    credit_cents: int
    days: tuple[DayCounts, ...]


def totals(conn, profile: str, since_ms: int, until_ms: int) -> Totals:
    """The :class:`Totals` of ``profile`` within ``[since_ms, until_ms)``."""
    calls, billed_s = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(R.c.billed_s), 0))
        .where(R.c.profile == profile, R.c.invite_ms >= since_ms, R.c.invite_ms < until_ms)).one()
    topups, cents = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(L.c.amount_cents), 0))
        .select_from(L.join(A, A.c.id == L.c.account_id))
        .where(A.c.profile == profile, L.c.kind == "topup", L.c.at_ms >= since_ms, L.c.at_ms < until_ms)).one()
    return Totals(int(calls), int(billed_s), int(topups), int(cents))


def _bucket(column, bounds_ms: tuple[int, ...]):
    """The index of the span of ``bounds_ms`` that ``column`` falls in (rows outside are filtered away)."""
    return sa.case(*[(column < end, i) for i, end in enumerate(bounds_ms[1:])], else_=len(bounds_ms) - 1)


def per_day(conn, profile: str, bounds_ms: tuple[int, ...]) -> tuple[DayCounts, ...]:
    """Calls and top-ups per span of consecutive ``bounds_ms`` (n+1 boundaries give n days)."""
    first, last = bounds_ms[0], bounds_ms[-1]
    calls = [0] * (len(bounds_ms) - 1)
    topups = [0] * len(calls)
    cents = [0] * len(calls)
    day = _bucket(R.c.invite_ms, bounds_ms).label("day")
    for row in conn.execute(sa.select(day, sa.func.count().label("n"))
                            .where(R.c.profile == profile, R.c.invite_ms >= first, R.c.invite_ms < last)
                            .group_by(day)):
        calls[row.day] = int(row.n)
    day = _bucket(L.c.at_ms, bounds_ms).label("day")
    for row in conn.execute(sa.select(day, sa.func.count().label("n"), sa.func.sum(L.c.amount_cents).label("c"))
                            .select_from(L.join(A, A.c.id == L.c.account_id))
                            .where(A.c.profile == profile, L.c.kind == "topup", L.c.at_ms >= first,
                                   L.c.at_ms < last)
                            .group_by(day)):
        topups[row.day], cents[row.day] = int(row.n), int(row.c)
    return tuple(DayCounts(bounds_ms[i], calls[i], topups[i], cents[i]) for i in range(len(calls)))


def overview(conn, profile: str, *, now_ms: int, today_ms: int, month_ms: int,
             day_bounds_ms: tuple[int, ...]) -> Overview:
    """The :class:`Overview` of ``profile``: today from ``today_ms``, the month from ``month_ms`` (both up
    to ``now_ms``), and :func:`per_day` over ``day_bounds_ms``."""
    with_credit, credit = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(A.c.balance_cents), 0))
        .where(A.c.profile == profile, A.c.balance_cents > 0)).one()
    return Overview(today=totals(conn, profile, today_ms, now_ms + 1), month=totals(conn, profile, month_ms, now_ms + 1),
                    accounts_with_credit=int(with_credit), credit_cents=int(credit),
                    days=per_day(conn, profile, day_bounds_ms))
