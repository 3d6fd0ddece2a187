"""The audit table: one row per thing changed or decided, by whom and from where.

Rows are only ever added (:func:`add`, inside the transaction of the change itself, so that a
change and its row commit together) and read (:func:`entries`): nothing here updates or deletes
one. The first writer is the PIN lockout (:mod:`billing.db.pins`); a portal shows them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from . import model

T = model.audit


@dataclass(frozen=True)
class AuditEntry:
    """One audited event. ``actor`` did ``action`` to ``subject`` (under ``profile``, from ``source``)."""

    at_ms: int
    actor: str
    action: str
    subject: str = ""
    profile: str = ""
    source: str = ""
    detail: str = ""
    before: str = ""
    after: str = ""
    id: int | None = None


def add(conn, entry: AuditEntry) -> int:
    """Write ``entry``; returns its id."""
    values = {f: getattr(entry, f) for f in ("at_ms", "actor", "action", "subject", "profile", "source",
                                             "detail", "before", "after")}
    return conn.execute(sa.insert(T).values(**values).returning(T.c.id)).scalar_one()


def entries(conn, *, profile: str | None = None, action: str | None = None, since_ms: int | None = None,
            limit: int | None = None) -> list[AuditEntry]:
    """The entries matching every filter given, oldest first."""
    q = sa.select(T).order_by(T.c.at_ms, T.c.id)
    if profile is not None:
        q = q.where(T.c.profile == profile)
    if action is not None:
        q = q.where(T.c.action == action)
    if since_ms is not None:
        q = q.where(T.c.at_ms >= since_ms)
    if limit is not None:
        q = q.limit(limit)
    return [AuditEntry(at_ms=r.at_ms, actor=r.actor, action=r.action, subject=r.subject, profile=r.profile,
                       source=r.source, detail=r.detail, before=r.before, after=r.after, id=r.id)
            for r in conn.execute(q)]
