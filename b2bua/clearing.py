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
session_expired, no_ack, no_prack,            ``Q.850;cause=102;text="Recovery on timer expiry"``: Q.850
modify_timeout, dialog_timeout, dialog_408,   defines 102 as a procedure started by the expiry of a
media_timeout                                 timer of error handling, which is what each of these is:
                                              the RFC 4028 session timer, 64*T1 waiting for an ACK,
                                              PRACK or the answer to a request in the dialog, the
                                              media silence timeout
caller_unreachable, agent_unreachable         ``Q.850;cause=27;text="Destination out of order"``: our
                                              request to that side (a BYE, re-INVITE, UPDATE) could not
                                              be delivered, Q.850 27's own words; the other side hears
                                              the call cannot go on
media_failed                                  ``Q.850;cause=41;text="Temporary failure"``: our media
                                              worker died (it is restarted at once); 41 is a failure of
                                              ours not likely to last, a new call may be tried at once
media_refused (the agent's answer is          ``SIP;cause=488;text="Not Acceptable Here"``: the SDP
unusable)                                     answer in its 2xx cannot be used, so the session ends
                                              (RFC 3261 §13.2.1) for the reason a 488 gives
no_rtp_ports (no port pair to ring the        ``Q.850;cause=34;text="No circuit/channel available"``:
agent with)                                   the channel of the onward call is what ran out
an agent that does not answer in time         ``Q.850;cause=19;text="No answer from user (user
(its CANCEL, the hunt goes on)                alerted)"``
===========================================  ========================================================

The legs add what the call cannot see: the BYE to a second 2xx of a forked INVITE (another fork of the
agent's proxy answered after the first, RFC 3261 §13.2.2.4) says ``SIP;cause=200;text="Call completed
elsewhere"`` (:data:`COMPLETED_ELSEWHERE`, RFC 3326's own example), and the BYE to a 2xx that crossed our
CANCEL says what the CANCEL said.  We never CANCEL one fork because another answered: we send one INVITE
per agent and ring agents in turn, and cancelling a proxy's other branches is that proxy's job (RFC 3261
§16.7 step 10).

The other ends carry no Reason: the maximum duration (a rule of ours no cause names), a refused session
refresh (``refresh_failed``), a peer that says our dialog is gone (``dialog_481``), the node stopping, an
internal or billing error, and the end of a spoken refusal.  No cause in either registry says those
truthfully, and a wrong one would be mapped onto a wrong ISUP cause.

Pure; pinned by ``tests/b2bua/test_clearing.py`` and on the wire by ``tests/b2bua/test_headers.py``.
"""

from __future__ import annotations

from .sip.causes import Reason
from .sip.codec import reason_phrase

__all__ = ["NORMAL_CLEARING", "NO_ANSWER", "CREDIT_EXHAUSTED", "TIMER_EXPIRED", "OUT_OF_ORDER", "TEMPORARY_FAILURE",
           "MEDIA_NOT_ACCEPTABLE", "NO_CHANNEL", "COMPLETED_ELSEWHERE", "CLEARING", "clearing_reason"]

NORMAL_CLEARING = Reason("Q.850", 16, "Normal call clearing")
NO_ANSWER = Reason("Q.850", 19, "No answer from user (user alerted)")
CREDIT_EXHAUSTED = Reason("SIP", 402, "Credit exhausted")
TIMER_EXPIRED = Reason("Q.850", 102, "Recovery on timer expiry")
OUT_OF_ORDER = Reason("Q.850", 27, "Destination out of order")
TEMPORARY_FAILURE = Reason("Q.850", 41, "Temporary failure")
MEDIA_NOT_ACCEPTABLE = Reason("SIP", 488, reason_phrase(488))
NO_CHANNEL = Reason("Q.850", 34, "No circuit/channel available")
COMPLETED_ELSEWHERE = Reason("SIP", 200, "Call completed elsewhere")

#: end_reason -> the Reason of the BYE/CANCEL we send the other side
CLEARING: dict[str, Reason] = {
    "caller_hangup": NORMAL_CLEARING,
    "agent_hangup": NORMAL_CLEARING,
    "caller_cancelled": NORMAL_CLEARING,
    "credit_exhausted": CREDIT_EXHAUSTED,
    "session_expired": TIMER_EXPIRED,
    "no_ack": TIMER_EXPIRED,
    "no_prack": TIMER_EXPIRED,
    "modify_timeout": TIMER_EXPIRED,
    "dialog_timeout": TIMER_EXPIRED,
    "dialog_408": TIMER_EXPIRED,
    "media_timeout": TIMER_EXPIRED,
    "caller_unreachable": OUT_OF_ORDER,
    "agent_unreachable": OUT_OF_ORDER,
    "media_failed": TEMPORARY_FAILURE,
    "media_refused": MEDIA_NOT_ACCEPTABLE,
    "no_rtp_ports": NO_CHANNEL,
}


def clearing_reason(end_reason: str | None, final_status: int) -> Reason | None:
    """The Reason for a call that ended for ``end_reason``; ``final_status`` is what an unanswered caller
    would be told (used when the hunt failed).  None: no Reason (see the module docstring)."""
    if end_reason == "no_agent":
        return Reason("SIP", final_status, reason_phrase(final_status))
    if end_reason is None:
        return None
    return CLEARING.get(end_reason)
