"""A call's record (EVN row): the times a call keeps, and the record built from what the call knew at its end.

:class:`CallTimes` is what the call stamps as it goes (ms of the injected
clock); :func:`call_record` turns the facts of a finished call and its
settlement into the :class:`~billing.db.rows.CallRecord` the store writes, and
:func:`log_record` writes the one line per call an operator reads (Call-ID,
caller, agent, outcome, money).  Pure functions of plain values.

Pinned by ``tests/b2bua/test_callrecord.py`` and the record assertions of
``tests/b2bua/test_call.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.logger import Logger

from billing.db.rows import CallRecord

from .identity import CallerIdentity
from .routing import AgentHunt, Route

log = Logger()


@dataclass
class CallTimes:
    """When things happened, in ms of the injected clock (the record's times)."""

    invite_ms: int
    answer_ms: int | None = None          # the carrier's leg answered (by us)
    agent_answer_ms: int | None = None
    announcement_end_ms: int | None = None
    end_ms: int | None = None


def call_record(*, call_id: str, route: Route | None, identity: CallerIdentity, hunt: AgentHunt | None,
                times: CallTimes, end_reason: str | None, a_status: int | None, b_status: int | None,
                session_id: str | None, settlement) -> CallRecord:
    """The record of a finished call; ``settlement`` is billing's (None: nothing billed, or it failed and the
    reconciler settles it)."""
    tried = [agent for agent, _ in hunt.tried] if hunt is not None else []
    return CallRecord(
        call_id=call_id,
        profile=route.profile.name if route is not None else "",
        service_number=route.service_number if route is not None else "",
        caller=identity.number,
        identity_source=identity.source,
        privacy=identity.privacy,
        caller_class=identity.caller_class.value if identity.caller_class else None,
        agent_tried=",".join(tried) or None,
        agent_answered=hunt.answered_by if hunt is not None else None,
        invite_ms=times.invite_ms,
        answer_ms=times.answer_ms,
        end_ms=times.end_ms,
        end_reason=end_reason or "hangup",
        a_status=a_status,
        b_status=b_status,
        billed_s=settlement.billed_s if settlement is not None else 0,
        charge_cents=settlement.charge_cents if settlement is not None else 0,
        call_session_id=session_id,
        caller_received=identity.received,
    )


def log_record(log_id: str, record: CallRecord) -> None:
    """The call's one line at info: who called whom, how it ended, what it cost."""
    log.info("call {call_id}: {caller} -> {agent}: {reason}, {billed_s} s billed, {charge} cents charged "
             "(A {a_status}, B {b_status})", call_id=log_id, caller=record.caller or "unidentified",
             agent=record.agent_answered or "no agent", reason=record.end_reason, billed_s=record.billed_s,
             charge=record.charge_cents, a_status=record.a_status, b_status=record.b_status)
