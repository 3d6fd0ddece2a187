"""The Reason (RFC 3326) on a BYE or CANCEL we send, per way a call ends: one table, chosen and explained here.

A B2BUA ends one leg because of the other, or of its own rules; the peer of the
leg it ends learns why from a ``Reason`` header, which carriers map onto an ISUP
release cause (RFC 3398, RFC 6432).  Our choices:

===========================================  ========================================================
how the call ended (``end_reason``)           Reason on our BYE / CANCEL
===========================================  ========================================================
caller_hangup, agent_hangup, caller_cancelled  ``Q.850;cause=16;text="Normal call clearing"``: one of the
                                              two users asked to end the call (Q.850 cause 16), and
                                              cause 16 is also what ISUP sends when a caller abandons
                                              before the answer, so the agent's CANCEL says the same
no_agent (the hunt failed after the caller    ``SIP;cause=486;text="Busy Here"`` when every agent was
was answered)                                 busy, else ``SIP;cause=480;text="Temporarily
                                              Unavailable"``: the final answer an unanswered caller
                                              gets (:meth:`b2bua.routing.AgentHunt.final_status`)
credit_exhausted                              ``SIP;cause=402;text="Credit exhausted"``: the status the
                                              node refuses a caller without credit with (402 Payment
                                              Required); no Q.850 cause speaks of payment, and a
                                              "normal clearing" would hide why the call was cut
an agent that does not answer in time         ``Q.850;cause=19;text="No answer from user (user
(its CANCEL, the hunt goes on)                alerted)"``
===========================================  ========================================================

An abort (the session timer ran out, dead media, the maximum duration, a leg
that broke) and the end of a spoken refusal carry no Reason: no cause in either
registry says those truthfully, and a wrong one would be mapped onto a wrong
ISUP cause.

Pure; pinned by ``tests/b2bua/test_clearing.py`` and on the wire by ``tests/b2bua/test_headers.py``.
"""

from __future__ import annotations

from .sip.causes import Reason
from .sip.codec import reason_phrase

__all__ = ["NORMAL_CLEARING", "NO_ANSWER", "CREDIT_EXHAUSTED", "CLEARING", "clearing_reason"]

NORMAL_CLEARING = Reason("Q.850", 16, "Normal call clearing")
NO_ANSWER = Reason("Q.850", 19, "No answer from user (user alerted)")
CREDIT_EXHAUSTED = Reason("SIP", 402, "Credit exhausted")

#: end_reason -> the Reason of the BYE/CANCEL we send the other side
CLEARING: dict[str, Reason] = {
    "caller_hangup": NORMAL_CLEARING,
    "agent_hangup": NORMAL_CLEARING,
    "caller_cancelled": NORMAL_CLEARING,
    "credit_exhausted": CREDIT_EXHAUSTED,
}


def clearing_reason(end_reason: str | None, final_status: int) -> Reason | None:
    """The Reason for a call that ended for ``end_reason``; ``final_status`` is what an unanswered caller
    would be told (used when the hunt failed).  None: no Reason (see the module docstring)."""
    if end_reason == "no_agent":
        return Reason("SIP", final_status, reason_phrase(final_status))
    if end_reason is None:
        return None
    return CLEARING.get(end_reason)
