"""Call records: what the B2BUA writes when a call ends, and the itemised list per caller."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from . import model
from .rows import CallRecord

R = model.call_records
_FIELDS = tuple(f.name for f in dataclasses.fields(CallRecord) if f.name != "id")


def add(conn, record: CallRecord) -> CallRecord:
    """Store ``record``; the stored copy with its id."""
    values = {name: getattr(record, name) for name in _FIELDS}
    new_id = conn.execute(sa.insert(R).values(**values).returning(R.c.id)).scalar_one()
    return dataclasses.replace(record, id=new_id)


def for_caller(conn, profile: str, number: str, *, limit: int | None = None) -> list[CallRecord]:
    """The calls of ``number`` under ``profile``, newest first."""
    q = sa.select(R).where(R.c.profile == profile, R.c.caller == number).order_by(R.c.invite_ms.desc(), R.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    return [CallRecord(**{name: getattr(row, name) for name in _FIELDS}, id=row.id) for row in conn.execute(q)]
