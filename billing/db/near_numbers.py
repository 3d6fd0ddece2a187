"""The accounts whose numbers a caller's number nearly is: the portal's hint for a number typed wrong.

A caller refused for "no credit" often has credit, under a number mistyped when the account was made
(by the caller on the top-up page, or by the provider). Near means, on the digits of the two E.164
numbers: the same length and one or two digits different (a wrong digit, a swapped pair, two wrong
digits), or one digit more or less (a digit left out or doubled; this covers a missing or extra
leading digit of the national number, wherever the country code ends).

Found in Python over the profile's numbers of the caller's length and one either side, read in one
query (``length(number)`` narrows it; the (profile, number) index serves the profile). For thousands
of accounts that is a few thousand short strings compared in microseconds each, the same on SQLite
and PostgreSQL; an edit distance in SQL needs an extension on PostgreSQL (fuzzystrmatch) and has
none on SQLite, and a LIKE per mistyped position would be a query of dozens of patterns for less.
The numbers of one page of calls are matched together, with one query.
"""

from __future__ import annotations

import sqlalchemy as sa

from . import model
from .accounts import to_account
from .rows import Account

A = model.accounts


def near(a: str, b: str) -> bool:
    """Whether the digits of numbers ``a`` and ``b`` differ in one or two places (same length), or by one
    digit added or left out. Equal numbers are not near: they are the same."""
    a, b = a.lstrip("+"), b.lstrip("+")
    if len(a) == len(b):
        return 0 < sum(x != y for x, y in zip(a, b)) <= 2
    if abs(len(a) - len(b)) != 1:
        return False
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    first = next((i for i, (x, y) in enumerate(zip(short, long_)) if x != y), len(short))
    return short[first:] == long_[first + 1:]


def near_accounts(conn, profile: str, numbers: tuple[str, ...]) -> dict[str, tuple[Account, ...]]:
    """For each of ``numbers`` (E.164) that has no account under ``profile``: the accounts whose numbers are
    :func:`near` it, by number (an empty tuple: none). Numbers that have an account are left out."""
    wanted = {n for n in numbers if n and n.startswith("+") and n[1:].isdigit()}
    if not wanted:
        return {}
    lengths = {len(n) + d for n in wanted for d in (-1, 0, 1)}
    rows = conn.execute(sa.select(A).where(A.c.profile == profile, sa.func.length(A.c.number).in_(sorted(lengths))))
    accounts = [to_account(row) for row in rows]
    have = {a.number for a in accounts}
    return {n: tuple(sorted((a for a in accounts if near(n, a.number)), key=lambda a: a.number))
            for n in sorted(wanted - have)}
