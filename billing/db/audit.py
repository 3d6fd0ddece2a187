"""The audit table: one row per thing changed or decided, by whom and from where.

Rows are only ever added (:func:`add`, inside the transaction of the change itself, so that a
change and its row commit together) and read (:func:`entries`, and a page at a time, newest first,
with :func:`page`): nothing here updates or deletes one. The first writer is the PIN lockout (:mod:`billing.db.pins`); a portal shows them all.
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


def _entry(r) -> AuditEntry:
    return AuditEntry(at_ms=r.at_ms, actor=r.actor, action=r.action, subject=r.subject, profile=r.profile,
                      source=r.source, detail=r.detail, before=r.before, after=r.after, id=r.id)


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
    return [_entry(r) for r in conn.execute(q)]


@dataclass(frozen=True)
class AuditPage:
    """One page of entries, newest first, and how many match in all."""

    entries: tuple[AuditEntry, ...]
    total: int


def _filtered(q, *, profile: str | None, action: str | None, since_ms: int | None, until_ms: int | None):
    if profile is not None:
        q = q.where(T.c.profile == profile)
    if action:
        q = q.where(T.c.action == action)
    if since_ms is not None:
        q = q.where(T.c.at_ms >= since_ms)
    if until_ms is not None:
        q = q.where(T.c.at_ms < until_ms)
    return q


def page(conn, *, profile: str | None = None, action: str | None = None, since_ms: int | None = None,
         until_ms: int | None = None, offset: int = 0, limit: int = 50) -> AuditPage:
    """The entries matching every filter given (``profile`` None: every profile and none; ``until_ms``
    exclusive), newest first, ``limit`` of them from ``offset``."""
    where = dict(profile=profile, action=action, since_ms=since_ms, until_ms=until_ms)
    total = conn.execute(_filtered(sa.select(sa.func.count()).select_from(T), **where)).scalar_one()
    q = _filtered(sa.select(T), **where).order_by(T.c.at_ms.desc(), T.c.id.desc()).offset(offset).limit(limit)
    return AuditPage(tuple(_entry(r) for r in conn.execute(q)), int(total))


def actions(conn, *, profile: str | None = None) -> tuple[str, ...]:
    """The actions that occur (under ``profile``, or anywhere), sorted: the choices of a filter."""
    q = sa.select(T.c.action).distinct().order_by(T.c.action)
    if profile is not None:
        q = q.where(T.c.profile == profile)
    return tuple(conn.execute(q).scalars())
