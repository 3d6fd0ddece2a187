"""Call records: what the B2BUA writes when a call ends, and the itemised list per caller."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from . import model
from .prepared import Prepared
from .rows import CallRecord

R = model.call_records
_FIELDS = tuple(f.name for f in dataclasses.fields(CallRecord) if f.name != "id")
_INSERT = Prepared(sa.insert(R).values({name: sa.bindparam(name) for name in _FIELDS}).returning(R.c.id))


def add_many(conn, records: tuple[CallRecord, ...]) -> list[CallRecord]:
    """Store ``records`` in the caller's transaction; the stored copies with their ids, in order."""
    return [dataclasses.replace(record, id=_INSERT.scalar(conn, **{name: getattr(record, name) for name in _FIELDS}))
            for record in records]


def for_caller(conn, profile: str, number: str, *, limit: int | None = None) -> list[CallRecord]:
    """The calls of ``number`` under ``profile``, newest first."""
    q = sa.select(R).where(R.c.profile == profile, R.c.caller == number).order_by(R.c.invite_ms.desc(), R.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    return [CallRecord(**{name: getattr(row, name) for name in _FIELDS}, id=row.id) for row in conn.execute(q)]
