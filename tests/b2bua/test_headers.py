"""What a carrier's test plan reads on the wire: Allow and Supported, Warning on 488, Reason on BYE and CANCEL.

Through the real manager, SIP endpoints and relay (tests.support.calls.Wire), the bytes the node sends:
our 2xx to the carrier's INVITE and our INVITE to the agent carry Allow and Supported
(:mod:`b2bua.capabilities`); a 488 to a re-INVITE carries a Warning (RFC 3261 §20.43); the BYE and CANCEL
we send because of the other leg carry a Reason (RFC 3326, :mod:`b2bua.clearing`); a method we do not
handle gets 405 with the same Allow (INFO is answered by :mod:`b2bua.info`: ``tests/b2bua/test_info_wire.py``).
"""

from __future__ import annotations

import pytest

from b2bua.capabilities import ALLOW
from tests.support.calls import AGENT, CARRIER, NODE, bridged_call

NORMAL = 'Q.850;cause=16;text="Normal call clearing"'
G722_ONLY = b"v=0\r\no=c 4711 9 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 9\r\n"


def test_our_2xx_to_the_carrier_and_our_invite_to_the_agent_carry_allow_and_supported(make_wire):
    """The 200 to the carrier: Allow (INFO too) and ``Supported: 100rel, timer``; our INVITE to the agent:
    the same Allow and one ``Supported: timer`` (we send no PRACK, so no 100rel as UAC)."""
    wire = make_wire()
    bridged_call(wire)
    (ok,) = wire.sent(NODE, CARRIER, status=200)
    assert ok.headers.get_all("allow") == ["ACK", "BYE", "CANCEL", "INFO", "INVITE", "OPTIONS", "PRACK", "UPDATE"]
    assert ok.headers.get_lines("supported") == ["100rel, timer"]
    (invite,) = wire.sent(NODE, AGENT, method="INVITE")
    assert invite.headers.get_lines("allow") == [ALLOW] and invite.headers.get_lines("supported") == ["timer"]
    wire.carrier.send("BYE")
    wire.settle()


@pytest.mark.parametrize("hangs_up, told", [("agent", CARRIER), ("carrier", AGENT)])
def test_a_bye_reaches_the_other_side_with_normal_clearing(make_wire, hangs_up, told):
    """One side hangs up: our BYE to the other carries ``Reason: Q.850;cause=16;text="Normal call clearing"``."""
    wire = make_wire()
    bridged_call(wire)
    {"agent": wire.agent, "carrier": wire.carrier}[hangs_up].send("BYE")
    (bye,) = wire.sent(NODE, told, method="BYE")
    assert bye.headers.get_lines("reason") == [NORMAL]
    wire.settle()


def test_a_cancel_asked_before_the_agents_first_provisional_keeps_its_reason(make_wire):
    """The caller hangs up before the agent said anything: our CANCEL waits for its 180 (RFC 3261 §9.1) and
    then goes out with the Reason asked for."""
    wire = make_wire("answer")
    wire.raw[AGENT] = []
    wire.carrier.call()
    (invite,) = [m for m in wire.raw[AGENT] if getattr(m, "method", None) == "INVITE"]
    wire.carrier.send("BYE")
    assert [m for m in wire.raw[AGENT] if getattr(m, "method", None) == "CANCEL"] == []
    wire.respond_raw(invite, 180, to_tag="r1")
    (cancel,) = [m for m in wire.raw[AGENT] if getattr(m, "method", None) == "CANCEL"]
    assert cancel.headers.get_lines("reason") == [NORMAL]
    wire.respond_raw(cancel, 200, to_tag="r1")
    wire.respond_raw(invite, 487, to_tag="r1")
    wire.settle()


def test_a_failed_hunt_after_the_announcement_says_busy_in_the_callers_bye(make_wire):
    """Answered for the announcement, the one agent busy: after the no-agent words, BYE to the carrier with
    ``SIP;cause=486``."""
    wire = make_wire("answer")
    wire.raw[AGENT] = []
    wire.carrier.call()
    (invite,) = [m for m in wire.raw[AGENT] if getattr(m, "method", None) == "INVITE"]
    wire.respond_raw(invite, 486, to_tag="busy")
    assert wire.sent(NODE, CARRIER, method="BYE") == []
    wire.run(6)
    (bye,) = wire.sent(NODE, CARRIER, method="BYE")
    assert bye.headers.get_lines("reason") == ['SIP;cause=486;text="Busy Here"']
    wire.settle()


def test_a_reinvite_without_g711_gets_488_with_a_warning_and_the_call_goes_on(make_wire):
    """The carrier re-INVITEs offering G.722 only: 488 with ``Warning: 305 127.0.0.1 "Incompatible media
    format"``; the call stays bridged on its codec; a later re-INVITE's 2xx carries Allow and Supported."""
    wire = make_wire()
    bridged_call(wire)
    wire.carrier.send("INVITE", G722_ONLY)
    (refused,) = wire.carrier.finals("INVITE")[1:]
    assert refused.status == 488
    assert refused.headers.get_lines("warning") == ['305 127.0.0.1 "Incompatible media format"']
    assert wire.call.state.value == "bridged" and wire.media[0].a.codec == "PCMA"
    wire.carrier.send("INVITE", wire.carrier.sdp("8 101"))
    ok = wire.carrier.finals("INVITE")[-1]
    assert ok.status == 200 and ok.headers.get_lines("allow") == [ALLOW]
    assert ok.headers.get_lines("supported") == ["100rel, timer"]
    wire.carrier.send("BYE")
    wire.settle()


def test_the_2xx_to_the_agents_reinvite_says_what_our_invite_said(make_wire):
    """The agent re-INVITEs (a session refresh): our 200 carries the Allow and ``Supported: timer`` of our
    INVITE to it, not the carrier's 100rel."""
    wire = make_wire()
    bridged_call(wire)
    wire.agent.send("INVITE", wire.agent.sdp("8 101", version=1))
    ok = wire.agent.finals("INVITE")[-1]
    assert ok.status == 200 and ok.headers.get_lines("allow") == [ALLOW]
    assert ok.headers.get_lines("supported") == ["timer"]
    wire.carrier.send("BYE")
    wire.settle()


def test_a_method_we_do_not_handle_in_the_dialog_gets_405_with_our_allow(make_wire):
    """A MESSAGE in the call's dialog: 405 with the Allow the 2xx listed, and the call goes on."""
    wire = make_wire()
    bridged_call(wire)
    wire.carrier.send("MESSAGE")
    (answer,) = wire.carrier.finals("MESSAGE")
    assert (answer.status, answer.headers.get_lines("allow")) == (405, [ALLOW])
    assert wire.call.state.value == "bridged"
    wire.carrier.send("BYE")
    wire.settle()
