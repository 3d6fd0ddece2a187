"""Early dialogs on the agent's leg (RFC 3261 §12.1.2, §13.2.2.4): a forking proxy in front of two phones.

The node's INVITE to the agent is answered by hand (``Wire.raw``): 180s with two To tags make two early
dialogs; the first 2xx confirms its own, the call is bridged to it; a 2xx from the other fork is ACKed
and BYEd, the BYE saying the call was completed elsewhere (RFC 3326); the early dialogs that never
answered are forgotten.  After the call nothing is left open.  A 2xx that crosses our CANCEL gets a BYE
with the CANCEL's Reason.
"""

from __future__ import annotations

import pytest

from b2bua.clearing import COMPLETED_ELSEWHERE, NO_ANSWER
from b2bua.legs import SipOutboundLeg
from tests.support.calls import AGENT, NODE, Wire, audio


@pytest.fixture
def w():
    wire = Wire()
    wire.raw[AGENT] = []
    yield wire
    wire.close()


def agent_leg(w: Wire) -> SipOutboundLeg:
    return w.call.b


def test_forked_180s_make_early_dialogs_and_a_second_2xx_is_acked_and_byed(w):
    """Two 180s (To tags f1, f2), 200 from f2: bridged to f2, its dialog confirmed and f1 forgotten; then a 200
    from f1 is ACKed and gets a BYE with ``Reason: SIP;cause=200;text="Call completed elsewhere"`` (answered
    200), the call stays with f2; the caller's BYE reaches f2 only."""
    w.carrier.call()
    (invite,) = [m for m in w.raw[AGENT] if getattr(m, "method", None) == "INVITE"]
    w.respond_raw(invite, 180, to_tag="f1")
    w.respond_raw(invite, 180, to_tag="f2")
    leg = agent_leg(w)
    assert set(leg.early) == {"f1", "f2"} and not leg.answered
    w.respond_raw(invite, 200, to_tag="f2", body=w.agent.sdp("8 101"), headers=(("Allow", "INVITE, BYE"),))
    assert w.call.state.value == "bridged" and leg.dialog_id.remote_tag == "f2" and not leg.early
    acks = [m for m in w.raw[AGENT] if getattr(m, "method", None) == "ACK"]
    assert [a.to.tag for a in acks] == ["f2"]
    w.respond_raw(invite, 200, to_tag="f1", body=w.agent.sdp("8 101"))
    late = [m for m in w.raw[AGENT] if getattr(m, "method", None) in ("ACK", "BYE") and m.to.tag == "f1"]
    assert [m.method for m in late] == ["ACK", "BYE"]
    assert late[1].headers.get_lines("reason") == ['SIP;cause=200;text="Call completed elsewhere"']
    assert COMPLETED_ELSEWHERE.value == late[1].headers.get("reason")
    assert w.call.state.value == "bridged" and leg.dialog_id.remote_tag == "f2" and len(leg.fork_byes) == 1
    w.respond_raw(late[1], 200, to_tag="f1")
    assert len(w.node.dialogs) == 2              # the carrier's and f2's; f1's is gone
    # the media answer of f2 was taken, the carrier was answered with ours
    assert w.media[0].b is not None and audio(w.carrier.finals("INVITE")[0].body)[1].direction == "sendrecv"
    w.carrier.send("BYE")
    (bye,) = [m for m in w.raw[AGENT] if getattr(m, "method", None) == "BYE" and m.to.tag == "f2"]
    w.respond_raw(bye, 200, to_tag="f2")
    w.settle()
    (record,) = w.records
    assert (record.end_reason, record.b_status) == ("caller_hangup", 200)


def test_fork_whose_bye_is_unanswered_still_leaves_nothing_open(w):
    """The other fork's 2xx gets ACK and BYE; that BYE is never answered: it times out (64*T1) and the
    dialog is gone all the same."""
    w.carrier.call()
    (invite,) = [m for m in w.raw[AGENT] if getattr(m, "method", None) == "INVITE"]
    w.respond_raw(invite, 183, to_tag="f1", body=w.agent.sdp("8 101"))
    w.respond_raw(invite, 200, to_tag="f2", body=w.agent.sdp("8 101"))
    assert not agent_leg(w).early
    w.respond_raw(invite, 200, to_tag="f1", body=w.agent.sdp("8 101"))
    assert [m for m in w.raw[AGENT] if getattr(m, "method", None) == "BYE" and m.to.tag == "f1"]
    w.carrier.send("BYE")
    (bye,) = [m for m in w.raw[AGENT] if getattr(m, "method", None) == "BYE" and m.to.tag == "f2"]
    w.respond_raw(bye, 200, to_tag="f2")
    w.settle()
    assert w.node.dialogs == {}


def test_failure_after_early_dialogs_forgets_them_and_the_carrier_gets_the_status(w):
    """180 from two forks, then 486: the early dialogs are forgotten, the carrier gets 486 (only agent busy)."""
    w.carrier.call()
    (invite,) = [m for m in w.raw[AGENT] if getattr(m, "method", None) == "INVITE"]
    w.respond_raw(invite, 180, to_tag="f1")
    w.respond_raw(invite, 180, to_tag="f2")
    leg = agent_leg(w)
    w.respond_raw(invite, 486, to_tag="f1")
    assert not leg.early and leg.ended
    assert w.carrier.finals("INVITE")[-1].status == 486
    w.settle()
    assert w.records[0].end_reason == "no_agent" and w.sent(NODE, AGENT, method="ACK")


def test_a_2xx_crossing_our_cancel_gets_a_bye_with_the_cancels_reason(w):
    """The agent's leg cancels with Q.850 19 (as the call does when the agent rings too long) after its 180;
    the agent's 200 crosses the CANCEL: it is ACKed, and the BYE the leg is then told to send without a
    Reason (the call's answer to a late 2xx of an agent it gave up on) says what the CANCEL said."""
    w.carrier.call()
    (invite,) = [m for m in w.raw[AGENT] if getattr(m, "method", None) == "INVITE"]
    w.respond_raw(invite, 180, to_tag="late")
    leg = agent_leg(w)
    leg.cancel(NO_ANSWER)
    w.pump()
    (cancel,) = [m for m in w.raw[AGENT] if getattr(m, "method", None) == "CANCEL"]
    assert cancel.headers.get_lines("reason") == [NO_ANSWER.value]
    w.respond_raw(invite, 200, to_tag="late", body=w.agent.sdp("8 101"))
    w.respond_raw(cancel, 481, to_tag="late")       # the CANCEL came too late: the INVITE has its answer
    assert leg.answered and w.sent(NODE, AGENT, method="ACK")
    leg.bye()
    w.pump()
    (bye,) = [m for m in w.raw[AGENT] if getattr(m, "method", None) == "BYE"]
    assert bye.headers.get_lines("reason") == [NO_ANSWER.value]
    w.respond_raw(bye, 200, to_tag="late")
    w.carrier.send("BYE")
    w.settle()
