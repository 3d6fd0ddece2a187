"""Call records: what the B2BUA writes when a call ends, and the itemised list per caller.

The itemised list also holds the calls that were billed but have no record
because their node died mid-call: it wrote none, and another node settled the
session when its lease ran out (:mod:`billing.reconcile`). Such a call is
shown from its billing session: its Call-ID, caller class, start, billed
seconds, charge and end reason ("lease expired"), ending at the node's last
sign of life (the reconciler charged up to there); what only the node knew
(service number, agents, SIP codes, how the caller was identified) is left
empty, with identity source ``unknown``, and ``id`` is None. A session that
its node settled itself is not shown this way: its record follows within the
record batch's window (showing the session meanwhile would hand a caller of
:func:`for_caller` a half-empty row for a call whose record is on its way).
Tests pin it on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import sqlalchemy as sa

from ..reconcile import LEASE_EXPIRED
from . import model
from .prepared import Prepared
from .rows import CallRecord

R = model.call_records
S = model.call_sessions
A = model.accounts
#: the identity source of a call shown from its billing session (the node that knew it wrote no record)
UNKNOWN_IDENTITY = "unknown"
_FIELDS = tuple(f.name for f in dataclasses.fields(CallRecord) if f.name != "id")
_INSERT = Prepared(sa.insert(R).values({name: sa.bindparam(name) for name in _FIELDS}).returning(R.c.id))


def add_many(conn, records: tuple[CallRecord, ...]) -> list[CallRecord]:
    """Store ``records`` in the caller's transaction; the stored copies with their ids, in order."""
    return [dataclasses.replace(record, id=_INSERT.scalar(conn, **{name: getattr(record, name) for name in _FIELDS}))
            for record in records]


def for_caller(conn, profile: str, number: str, *, limit: int | None = None) -> list[CallRecord]:
    """The calls of ``number`` under ``profile``, newest first: the records, and the calls whose node died
    (see the module's docstring; their ``id`` is None)."""
    q = sa.select(R).where(R.c.profile == profile, R.c.caller == number).order_by(R.c.invite_ms.desc(), R.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    records = [CallRecord(**{name: getattr(row, name) for name in _FIELDS}, id=row.id) for row in conn.execute(q)]
    # when the limit cut the list, only sessions that began after the oldest call shown can belong in it
    since_ms = records[-1].invite_ms if limit is not None and len(records) == limit else None
    unrecorded = _without_record(conn, profile, number, {r.call_session_id for r in records}, since_ms)
    if not unrecorded:
        return records
    calls = sorted(records + unrecorded, key=lambda r: (r.invite_ms, r.id or 0), reverse=True)
    return calls if limit is None else calls[:limit]


def _without_record(conn, profile: str, number: str, recorded: set, since_ms: int | None) -> list[CallRecord]:
    """The sessions of the account (``profile``, ``number``) that a reconciler settled and that have no call
    record, as records."""
    q = (sa.select(S.c.id, S.c.call_id, S.c.caller_class, S.c.opened_ms, S.c.renewed_ms, S.c.settled_ms,
                   S.c.end_reason, S.c.billed_s, S.c.charged_cents)
         .select_from(S.join(A, A.c.id == S.c.account_id))
         .where(A.c.profile == profile, A.c.number == number, S.c.state == "settled",
                S.c.end_reason == LEASE_EXPIRED))
    if since_ms is not None:
        q = q.where(S.c.opened_ms >= since_ms)
    sessions = [row for row in conn.execute(q) if row.id not in recorded]
    if not sessions:
        return []
    # their records may still be there: cut off by the limit (a record's INVITE comes before its session)
    have = set(conn.execute(sa.select(R.c.call_session_id)
                            .where(R.c.call_session_id.in_([row.id for row in sessions]))).scalars())
    return [CallRecord(call_id=row.call_id, profile=profile, service_number="", caller=number,
                       identity_source=UNKNOWN_IDENTITY, privacy=False, caller_class=row.caller_class,
                       agent_tried=None, agent_answered=None, invite_ms=int(row.opened_ms), answer_ms=None,
                       end_ms=_end_ms(row), end_reason=row.end_reason, a_status=None, b_status=None,
                       billed_s=int(row.billed_s), charge_cents=int(row.charged_cents), call_session_id=row.id)
            for row in sessions if row.id not in have]


def _end_ms(row) -> int | None:
    """When a call whose node died ended: the node's last sign of life, up to which the reconciler charged."""
    end_ms = row.renewed_ms if row.renewed_ms is not None else row.settled_ms
    return None if end_ms is None else int(end_ms)


# -- every call of a profile (the provider portal's call list) -------------------------------------------

#: what became of a call, as the portal says it; :func:`outcome` gives a record's, :class:`CallFilter` selects by it
OUTCOMES = ("talked", "no_credit", "unidentified", "no_agent", "cut_off", "caller_hung_up", "pin_locked",
            "pin_wrong", "refused", "failed")
#: the end reasons that say the outcome whether or not an agent answered
_BY_REASON = {"no_credit": "no_credit", "unidentified": "unidentified", "no_agent": "no_agent",
              "credit_exhausted": "cut_off", "pin_locked": "pin_locked", "pin_wrong": "pin_wrong",
              "unknown_service_number": "refused", "media_refused": "refused", "caller_cancelled": "caller_hung_up"}
#: the refusals a caller is told in words; one who hangs up while it is spoken ends the call with the
#: refusal's reason and :data:`HUNG_UP_DURING_REFUSAL` (``no_credit_hangup``): the same outcome, and the record
#: says who ended it
SPOKEN_REFUSALS = ("no_credit", "unidentified", "pin_locked", "pin_wrong")
HUNG_UP_DURING_REFUSAL = "_hangup"
_BY_REASON.update({reason + HUNG_UP_DURING_REFUSAL: _BY_REASON[reason] for reason in SPOKEN_REFUSALS})
#: the end reasons of a call that either side ended: a conversation when an agent answered, else the caller gave up
_HANGUPS = ("caller_hangup", "agent_hangup", "hangup")


def outcome(record: CallRecord) -> str:
    """One of :data:`OUTCOMES`: by the end reason, else talked when an agent answered; a hang-up before
    that is the caller's; anything else (a billing error, dead media, a dead node) failed."""
    by_reason = _BY_REASON.get(record.end_reason or "")
    if by_reason is not None:
        return by_reason
    if record.agent_answered is not None:
        return "talked"
    return "caller_hung_up" if record.end_reason in _HANGUPS else "failed"


def _outcome_clause(name: str):
    """The SQL condition of :func:`outcome` being ``name``."""
    other = sa.or_(R.c.end_reason.is_(None), R.c.end_reason.not_in(list(_BY_REASON)))
    answered = R.c.agent_answered.is_not(None)
    if name == "talked":
        return sa.and_(other, answered)
    if name == "caller_hung_up":
        return sa.or_(R.c.end_reason == "caller_cancelled", sa.and_(~answered, R.c.end_reason.in_(_HANGUPS)))
    if name == "failed":
        return sa.and_(other, ~answered, sa.or_(R.c.end_reason.is_(None), R.c.end_reason.not_in(_HANGUPS)))
    return R.c.end_reason.in_([reason for reason, o in _BY_REASON.items() if o == name])


@dataclass(frozen=True)
class CallFilter:
    """Which calls of a profile: INVITE in [since_ms, until_ms), the number (E.164: the caller identified or as
    received; else digits that either contains), the outcome (one of :data:`OUTCOMES`). None: any."""

    since_ms: int | None = None
    until_ms: int | None = None
    number: str | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class CallPage:
    """One page of a profile's calls, newest first, and how many match in all."""

    records: tuple[CallRecord, ...]
    total: int


def for_profile(conn, profile: str, which: CallFilter = CallFilter(), *, offset: int = 0,
                limit: int | None = None) -> CallPage:
    """The call records of ``profile`` (every caller's) matching ``which``, newest first, ``limit`` from
    ``offset``. Calls whose node died without a record are not among them (:func:`for_caller` shows those of
    one caller)."""
    where = [R.c.profile == profile]
    if which.since_ms is not None:
        where.append(R.c.invite_ms >= which.since_ms)
    if which.until_ms is not None:
        where.append(R.c.invite_ms < which.until_ms)
    if which.number:
        if which.number.startswith("+"):
            where.append(sa.or_(R.c.caller == which.number, R.c.caller_received == which.number))
        else:
            digits = "".join(ch for ch in which.number if ch.isdigit())
            where.append(sa.or_(R.c.caller.contains(digits), R.c.caller_received.contains(digits)))
    if which.outcome is not None:
        where.append(_outcome_clause(which.outcome))
    total = conn.execute(sa.select(sa.func.count()).select_from(R).where(*where)).scalar_one()
    q = sa.select(R).where(*where).order_by(R.c.invite_ms.desc(), R.c.id.desc()).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    records = tuple(CallRecord(**{name: getattr(row, name) for name in _FIELDS}, id=row.id) for row in conn.execute(q))
    return CallPage(records, int(total))
