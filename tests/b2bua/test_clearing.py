"""The Reason on the BYE/CANCEL we send, per way a call ends (b2bua.clearing), on plain values."""

from __future__ import annotations

import pytest

from b2bua.clearing import CREDIT_EXHAUSTED, NO_ANSWER, NORMAL_CLEARING, clearing_reason


@pytest.mark.parametrize("end_reason, status, value", [
    ("caller_hangup", 480, 'Q.850;cause=16;text="Normal call clearing"'),
    ("agent_hangup", 480, 'Q.850;cause=16;text="Normal call clearing"'),
    ("caller_cancelled", 480, 'Q.850;cause=16;text="Normal call clearing"'),
    ("credit_exhausted", 480, 'SIP;cause=402;text="Credit exhausted"'),
    ("no_agent", 486, 'SIP;cause=486;text="Busy Here"'),
    ("no_agent", 480, 'SIP;cause=480;text="Temporarily Unavailable"'),
])
def test_each_way_a_call_ends_has_its_reason(end_reason, status, value):
    """Hang-ups and a caller's cancel clear normally (Q.850 16), spent credit says 402, a failed hunt says the
    status an unanswered caller would have got."""
    assert clearing_reason(end_reason, status).value == value


@pytest.mark.parametrize("end_reason", [None, "media_timeout", "session_expired", "max_duration", "no_ack",
                                        "no_credit", "internal_error"])
def test_aborts_and_refusals_carry_no_reason(end_reason):
    """No registry's cause says those truthfully: no Reason rather than a wrong one."""
    assert clearing_reason(end_reason, 480) is None


def test_the_named_reasons():
    """The three constants the call uses directly."""
    assert (NORMAL_CLEARING.protocol, NORMAL_CLEARING.cause) == ("Q.850", 16)
    assert (NO_ANSWER.protocol, NO_ANSWER.cause) == ("Q.850", 19)
    assert (CREDIT_EXHAUSTED.protocol, CREDIT_EXHAUSTED.cause) == ("SIP", 402)
