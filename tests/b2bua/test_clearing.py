"""The Reason on the BYE/CANCEL we send, per way a call ends (b2bua.clearing), on plain values."""

from __future__ import annotations

import pytest

from b2bua.clearing import (COMPLETED_ELSEWHERE, CREDIT_EXHAUSTED, NO_ANSWER, NORMAL_CLEARING, TIMER_EXPIRED,
                            clearing_reason)


@pytest.mark.parametrize("end_reason, status, value", [
    ("caller_hangup", 480, 'Q.850;cause=16;text="Normal call clearing"'),
    ("agent_hangup", 480, 'Q.850;cause=16;text="Normal call clearing"'),
    ("caller_cancelled", 480, 'Q.850;cause=16;text="Normal call clearing"'),
    ("credit_exhausted", 480, 'SIP;cause=402;text="Credit exhausted"'),
    ("no_agent", 486, 'SIP;cause=486;text="Busy Here"'),
    ("no_agent", 480, 'SIP;cause=480;text="Temporarily Unavailable"'),
    ("session_expired", 500, 'Q.850;cause=102;text="Recovery on timer expiry"'),
    ("no_ack", 500, 'Q.850;cause=102;text="Recovery on timer expiry"'),
    ("no_prack", 500, 'Q.850;cause=102;text="Recovery on timer expiry"'),
    ("modify_timeout", 500, 'Q.850;cause=102;text="Recovery on timer expiry"'),
    ("dialog_timeout", 500, 'Q.850;cause=102;text="Recovery on timer expiry"'),
    ("dialog_408", 500, 'Q.850;cause=102;text="Recovery on timer expiry"'),
    ("media_timeout", 500, 'Q.850;cause=102;text="Recovery on timer expiry"'),
    ("caller_unreachable", 500, 'Q.850;cause=27;text="Destination out of order"'),
    ("agent_unreachable", 500, 'Q.850;cause=27;text="Destination out of order"'),
    ("media_failed", 500, 'Q.850;cause=41;text="Temporary failure"'),
    ("media_refused", 500, 'SIP;cause=488;text="Not Acceptable Here"'),
    ("no_rtp_ports", 500, 'Q.850;cause=34;text="No circuit/channel available"'),
])
def test_each_way_a_call_ends_has_its_reason(end_reason, status, value):
    """Hang-ups and a caller's cancel clear normally (Q.850 16), spent credit says 402, a failed hunt says the
    status an unanswered caller would have got; a timer of error handling that ran out (session timer, ACK,
    PRACK, a request in the dialog, media silence) says Q.850 102, a side our requests cannot reach 27, our
    media worker's death 41, an agent's unusable answer SIP 488, no RTP ports for the agent's leg 34."""
    assert clearing_reason(end_reason, status).value == value


@pytest.mark.parametrize("end_reason", [None, "max_duration", "refresh_failed", "dialog_481", "node_stopped",
                                        "no_credit", "internal_error", "billing_error"])
def test_the_other_ends_carry_no_reason(end_reason):
    """No registry's cause says those truthfully: no Reason rather than a wrong one."""
    assert clearing_reason(end_reason, 480) is None


def test_the_named_reasons():
    """The constants the call and the legs use directly; "Call completed elsewhere" is RFC 3326's."""
    assert (NORMAL_CLEARING.protocol, NORMAL_CLEARING.cause) == ("Q.850", 16)
    assert (NO_ANSWER.protocol, NO_ANSWER.cause) == ("Q.850", 19)
    assert (CREDIT_EXHAUSTED.protocol, CREDIT_EXHAUSTED.cause) == ("SIP", 402)
    assert (TIMER_EXPIRED.protocol, TIMER_EXPIRED.cause) == ("Q.850", 102)
    assert COMPLETED_ELSEWHERE.value == 'SIP;cause=200;text="Call completed elsewhere"'
