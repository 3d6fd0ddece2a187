"""The portal's list of a profile's prepaid customers: searched, sorted and cut into pages in SQL.

A row is an account with its balance, its number of top-ups, its last top-up and its last call. The
last call is the newest call record of the account's number, or of a call billed to the account under
an earlier number (call records keep the number a call came from; the billing session ties the call to
the account through a renumber).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from . import model

A, L, R, S = model.accounts, model.ledger, model.call_records, model.call_sessions

#: the columns a list may be sorted by
SORTS = ("number", "balance", "topups", "last_topup", "last_call")


@dataclass(frozen=True)
class Customer:
    """One account of the list."""

    number: str
    balance_cents: int
    topups: int
    last_topup_ms: int | None
    last_call_ms: int | None


@dataclass(frozen=True)
class CustomerPage:
    """One page of the list and how many rows the whole list has."""

    rows: tuple[Customer, ...]
    total: int


@dataclass(frozen=True)
class Search:
    """What the number column must match: one of ``prefixes`` at its start, or ``digits`` anywhere."""

    prefixes: tuple[str, ...] = ()
    digits: str = ""


def customers(conn, profile: str, *, search: Search | None = None, sort: str = "number", descending: bool = False,
              offset: int = 0, limit: int = 50) -> CustomerPage:
    """The accounts of ``profile`` matching ``search``, sorted by ``sort`` (one of :data:`SORTS`), one page."""
    topups = (sa.select(L.c.account_id, sa.func.count().label("n"), sa.func.max(L.c.at_ms).label("last"))
              .where(L.c.kind == "topup").group_by(L.c.account_id).subquery())
    by_number = (sa.select(R.c.caller, sa.func.max(R.c.invite_ms).label("last"))
                 .where(R.c.profile == profile).group_by(R.c.caller).subquery())
    by_session = (sa.select(S.c.account_id, sa.func.max(R.c.invite_ms).label("last"))
                  .select_from(R.join(S, S.c.id == R.c.call_session_id))
                  .where(R.c.profile == profile).group_by(S.c.account_id).subquery())
    a, b = by_number.c.last, by_session.c.last
    last_call = sa.case((a.is_(None), b), (b.is_(None), a), (a > b, a), else_=b).label("last_call")
    n = sa.func.coalesce(topups.c.n, 0).label("topups")
    q = (sa.select(A.c.number, A.c.balance_cents, n, topups.c.last.label("last_topup"), last_call)
         .outerjoin(topups, topups.c.account_id == A.c.id)
         .outerjoin(by_number, by_number.c.caller == A.c.number)
         .outerjoin(by_session, by_session.c.account_id == A.c.id)
         .where(A.c.profile == profile))
    if search is not None:
        q = q.where(sa.or_(*[A.c.number.startswith(p, autoescape=True) for p in search.prefixes],
                           *([A.c.number.contains(search.digits, autoescape=True)] if search.digits else [])))
    total = conn.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one()
    column = {"number": A.c.number, "balance": A.c.balance_cents, "topups": n,
              "last_topup": topups.c.last, "last_call": last_call}[sort if sort in SORTS else "number"]
    # never-seen times sort as the oldest, on both databases
    key = sa.func.coalesce(column, -1) if sort in ("last_topup", "last_call") else column
    q = q.order_by(key.desc() if descending else key.asc(), A.c.number).offset(offset).limit(limit)
    rows = tuple(Customer(r.number, int(r.balance_cents), int(r.topups),
                          None if r.last_topup is None else int(r.last_topup),
                          None if r.last_call is None else int(r.last_call)) for r in conn.execute(q))
    return CustomerPage(rows, int(total))


def search_for(text: str, region: str = "DE") -> Search | None:
    """What a number typed in any usual form, whole or in part, matches; None when it has no digits.

    A whole number is normalised to E.164 (``0151 12345678`` finds ``+4915112345678``); a part written
    from the start (``0151 1``, ``+49151``, ``0049151``) matches numbers that begin so; other digits
    (``12345``) match anywhere in the number.
    """
    import phonenumbers

    from ..numbers import normalise
    digits = "".join(c for c in text if c.isdigit())
    if not digits:
        return None
    whole = normalise(text.strip(), region)
    prefixes = [whole] if whole else []
    if text.strip().startswith("+"):
        prefixes.append("+" + digits)
    elif digits.startswith("00"):
        prefixes.append("+" + digits[2:])
    elif digits.startswith("0"):
        prefixes.append(f"+{phonenumbers.country_code_for_region(region)}{digits[1:]}")
    else:
        return Search(tuple(prefixes), digits)
    return Search(tuple(dict.fromkeys(prefixes)))
