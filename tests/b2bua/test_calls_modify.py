"""re-INVITE and UPDATE across the bridge (issue 3): relayed hold, resume and codec change; RFC 3261 §14.2 and
RFC 3311 §5.2 one-at-a-time rules; on the wire between real endpoints, real media, a task.Clock.

Each test ends the call and lets every transaction run out: the node then has no call, transaction,
dialog or timer left (``Wire.settle``).
"""

from __future__ import annotations

import random

import pytest

from b2bua.modify import PENDING_RULES, UAC_INVITE, UAC_OFFER, UAS_INVITE, UAS_OFFER, UAS_UPDATE, conflict, \
    relay_status, retry_after
from tests.support.calls import AGENT, CARRIER, NODE, Wire, audio, bridged_call
from tests.support.callmedia import relay_session

#: every test here runs with the call's media in process and behind a media worker (tests/b2bua/conftest.py)
BOTH_ENGINES = True


@pytest.fixture
def wire():
    made: list[Wire] = []

    def make(**kw) -> Wire:
        made.append(Wire(**kw))
        return made[-1]
    yield make
    for w in made:
        w.close()


def reinvites_to_agent(w: Wire) -> list:
    """The re-INVITEs and UPDATEs the agent's TU saw (its first INVITE left out)."""
    return [r for r in w.agent.requests if r.method in ("INVITE", "UPDATE") and r.to.tag is not None]


def hang_up(w: Wire) -> None:
    w.carrier.send("BYE")
    assert w.agent.got("BYE"), "the agent got no BYE"
    w.settle()


# -- the rules, as data --------------------------------------------------------------------------

def test_pending_rules_of_rfc3261_14_2_and_rfc3311_5_2():
    """500 for a second INVITE/UPDATE before the first was answered, 491 against our own pending offer or
    INVITE, 500 for an offer meeting the peer's unanswered one; nothing pending: no objection."""
    assert conflict("INVITE", True, frozenset()) is None
    assert conflict("INVITE", True, frozenset({UAS_INVITE, UAS_OFFER})) == 500
    assert conflict("INVITE", False, frozenset({UAC_INVITE, UAC_OFFER})) == 491
    assert conflict("INVITE", True, frozenset({UAS_UPDATE, UAS_OFFER})) == 500
    assert conflict("UPDATE", False, frozenset({UAS_UPDATE})) == 500
    assert conflict("UPDATE", True, frozenset({UAC_OFFER})) == 491
    assert conflict("UPDATE", False, frozenset({UAC_OFFER})) is None      # a refresh without SDP may cross
    assert conflict("UPDATE", True, frozenset({UAS_INVITE, UAS_OFFER})) == 500
    assert {status for *_, status in PENDING_RULES} == {491, 500}
    rng = random.Random(3)
    values = {int(retry_after(rng)) for _ in range(400)}
    assert min(values) == 0 and max(values) == 10
    assert [relay_status(s) for s in (200, 202, 491, 408, 503, 488, 606, 415, 481)] == \
        [200, 200, 491, 408, 500, 488, 488, 488, 488]


# -- relayed changes ------------------------------------------------------------------------------

def test_hold_then_resume_from_the_carrier_are_relayed_to_the_agent(wire):
    """Carrier re-INVITE sendonly -> the agent gets a re-INVITE with a=sendonly from our leg-b address, answers
    recvonly -> the carrier's 200 says recvonly; media switched only then; resume (sendrecv) the same way."""
    w = wire()
    call = bridged_call(w)
    media = w.media[0]
    tx = w.carrier.send("INVITE", w.carrier.sdp(direction="sendonly"),
                        headers=(("Session-Expires", "1800;refresher=uac"), ("Supported", "timer")))
    (hold,) = reinvites_to_agent(w)
    sd, m = audio(hold.body)
    assert hold.method == "INVITE" and m.direction == "sendonly"
    assert m.port == relay_session(media).leg_b.local_port and sd.connection.address == "127.0.0.1"
    assert sd.origin.username == "prepaid"
    (ok,) = w.carrier.finals("INVITE")[1:]
    assert ok.status == 200 and ok.headers.get("session-expires") == "1800;refresher=uac"
    _, m_a = audio(ok.body)
    assert m_a.direction == "recvonly" and m_a.port == relay_session(media).leg_a.local_port
    assert (media.a.direction, media.b.direction) == ("sendonly", "recvonly")
    assert not relay_session(media).leg_a.may_send and relay_session(media).leg_b.may_send
    assert tx and call.state.value == "bridged"
    w.carrier.send("INVITE", w.carrier.sdp(direction="sendrecv"))
    resume = reinvites_to_agent(w)[-1]
    assert audio(resume.body)[1].direction == "sendrecv"
    assert audio(w.carrier.finals("INVITE")[-1].body)[1].direction == "sendrecv"
    assert (media.a.direction, media.b.direction) == ("sendrecv", "sendrecv")
    assert relay_session(media).leg_a.may_send and relay_session(media).leg_b.may_send
    hang_up(w)
    assert w.records[0].end_reason == "caller_hangup"


def test_hold_from_the_agent_is_relayed_to_the_carrier(wire):
    """The agent holds: the carrier gets our re-INVITE with a=sendonly, answers recvonly; the agent's 200 says recvonly."""
    w = wire()
    bridged_call(w)
    w.agent.send("INVITE", w.agent.sdp("8 101", direction="sendonly"))
    hold = [r for r in w.carrier.requests if r.method == "INVITE"][-1]
    assert audio(hold.body)[1].direction == "sendonly"
    assert audio(w.agent.finals("INVITE")[-1].body)[1].direction == "recvonly"
    assert (w.media[0].a.direction, w.media[0].b.direction) == ("recvonly", "sendonly")
    hang_up(w)


def test_codec_change_is_relayed_and_both_legs_end_up_on_it(wire):
    """The carrier re-offers mu-law only: the agent is offered mu-law first (then A-law), takes it, the
    carrier's 200 has mu-law; both relay legs then use PCMU (nothing transcoded)."""
    w = wire()
    bridged_call(w)
    media = w.media[0]
    assert (media.a.codec, media.b.codec) == ("PCMA", "PCMA")
    w.carrier.send("INVITE", w.carrier.sdp("0 101"))
    (change,) = reinvites_to_agent(w)
    assert audio(change.body)[1].formats == ("0", "8", "101")
    assert audio(w.carrier.finals("INVITE")[-1].body)[1].formats == ("0", "101")
    assert (media.a.codec, media.b.codec) == ("PCMU", "PCMU")
    hang_up(w)


def test_a_codec_change_the_agent_cannot_follow_is_transcoded_not_refused(wire):
    """The carrier switches to mu-law only, the agent takes only A-law: it answers our offer (PCMU, PCMA)
    with PCMA, the carrier's re-INVITE gets 200 with PCMU, and the relay transcodes between them."""
    w = wire()
    bridged_call(w)
    media = w.media[0]
    w.agent.on_modify = lambda request: (200, w.agent.sdp("8 101"))
    w.carrier.send("INVITE", w.carrier.sdp("0 101"))
    (change,) = reinvites_to_agent(w)
    assert audio(change.body)[1].formats == ("0", "8", "101")
    ok = w.carrier.finals("INVITE")[-1]
    assert ok.status == 200 and audio(ok.body)[1].formats == ("0", "101")
    assert (media.a.codec, media.b.codec) == ("PCMU", "PCMA")
    assert (relay_session(media).a_out.source_codec, relay_session(media).b_out.source_codec) == ("PCMA", "PCMU")
    hang_up(w)


@pytest.mark.parametrize("agent_allow,relayed_as", [
    ("INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE", "UPDATE"),
    ("INVITE, ACK, CANCEL, BYE, OPTIONS", "INVITE"),
], ids=["agent_allows_update", "agent_without_update"])
def test_update_is_relayed_as_update_where_the_peer_allows_it(wire, agent_allow, relayed_as):
    """A hold by UPDATE: the agent gets an UPDATE when its Allow lists UPDATE, else a re-INVITE; the carrier's
    UPDATE is answered 200 recvonly either way."""
    w = wire(agent_allow=agent_allow)
    bridged_call(w)
    w.carrier.send("UPDATE", w.carrier.sdp(direction="sendonly"))
    (hold,) = reinvites_to_agent(w)
    assert hold.method == relayed_as and audio(hold.body)[1].direction == "sendonly"
    (ok,) = w.carrier.finals("UPDATE")
    assert ok.status == 200 and audio(ok.body)[1].direction == "recvonly"
    assert w.media[0].a.direction == "sendonly"
    hang_up(w)


def test_agent_refusing_the_change_gives_the_carrier_488_and_the_old_media(wire):
    """The agent answers the relayed hold 488: the carrier gets 488, both legs keep sendrecv and PCMA; the
    call goes on and a later resume-less BYE ends it cleanly."""
    w = wire()
    bridged_call(w)
    media = w.media[0]
    w.agent.on_modify = lambda request: (488, None)
    w.carrier.send("INVITE", w.carrier.sdp(direction="sendonly"))
    assert len(reinvites_to_agent(w)) == 1
    assert w.carrier.finals("INVITE")[-1].status == 488
    assert (media.a.direction, media.b.direction) == ("sendrecv", "sendrecv")
    assert relay_session(media).leg_a.may_send and relay_session(media).leg_b.may_send
    assert w.call.state.value == "bridged"
    hang_up(w)


def test_agent_never_answering_the_change_gives_408_and_ends_the_call(wire):
    """The agent says 100 and nothing more: after 64*T1 the carrier gets 408 for its re-INVITE, the media
    stays as it was, and the call ends with BYE to both (RFC 3261 §12.2.1.2)."""
    w = wire()
    bridged_call(w)
    media = w.media[0]
    w.agent.on_modify = lambda request: None
    w.carrier.send("INVITE", w.carrier.sdp(direction="sendonly"))
    w.run(31)
    assert len(w.carrier.finals("INVITE")) == 1 and media.a.direction == "sendrecv"
    w.run(2)
    assert w.carrier.finals("INVITE")[-1].status == 408
    assert media.b.direction == "sendrecv"
    byes = w.sent(NODE, CARRIER, method="BYE")
    assert byes and w.log.index(next(e for e in w.log if e[2] is byes[0])) > \
        w.log.index(next(e for e in w.log if getattr(e[2], "status", 0) == 408))
    assert w.agent.got("BYE")
    w.settle()
    assert w.records[0].end_reason == "modify_timeout"


def test_session_refresh_and_address_change_are_answered_without_the_agent(wire):
    """Same SDP again (same o= version), no SDP at all, and a new port with the same direction and codec:
    each is answered 200 by us, the agent sees no re-INVITE; the new port is followed by our relay."""
    w = wire()
    bridged_call(w)
    media = w.media[0]
    w.carrier.send("INVITE", w.carrier.sdp(version=1))
    w.carrier.send("INVITE")
    ok = w.carrier.finals("INVITE")[-1]
    assert ok.status == 200 and ok.body            # our last SDP, as the issue wants for an offerless re-INVITE
    w.carrier.send("UPDATE", headers=(("Session-Expires", "1800;refresher=uac"),))
    w.carrier.send("INVITE", w.carrier.sdp(port=w.rig.carrier.port + 2))
    assert [r.status for r in w.carrier.finals("INVITE")] == [200, 200, 200, 200]
    assert w.carrier.finals("UPDATE")[-1].status == 200
    assert reinvites_to_agent(w) == []
    assert relay_session(media).leg_a.signalled[1] == w.rig.carrier.port + 2
    hang_up(w)


def test_before_the_bridge_a_hold_is_answered_locally(wire):
    """Answered by us (announcement mode), agent still ringing: the carrier's hold gets 200 recvonly from us
    and nothing reaches the agent; the carrier's BYE then CANCELs the agent."""
    w = wire(answer_mode="answer")
    w.agent.answer_invite = False
    w.carrier.call()
    assert w.call.state.value == "hunting" and w.carrier.dialog_id is not None
    w.carrier.send("INVITE", w.carrier.sdp(direction="sendonly"))
    assert audio(w.carrier.finals("INVITE")[-1].body)[1].direction == "recvonly"
    assert reinvites_to_agent(w) == [] and w.media[0].a.direction == "sendonly"
    w.carrier.send("BYE")
    assert w.agent.cancelled == 1
    w.settle()


# -- one at a time ------------------------------------------------------------------------------------

def test_second_reinvite_while_the_first_is_relayed_gets_500_with_retry_after(wire):
    """RFC 3261 §14.2: while the carrier's hold waits for the agent, its next re-INVITE gets 500 with
    Retry-After 0-10; the first is then answered 200 when the agent answers."""
    w = wire()
    bridged_call(w)
    w.agent.on_modify = lambda request: None
    w.carrier.send("INVITE", w.carrier.sdp(direction="sendonly"))
    w.carrier.send("INVITE", w.carrier.sdp(direction="inactive"))
    (refused,) = w.carrier.finals("INVITE")[1:]
    assert refused.status == 500 and 0 <= int(refused.headers.get("retry-after")) <= 10
    w.carrier.send("UPDATE", w.carrier.sdp(direction="inactive"))
    assert w.carrier.finals("UPDATE")[-1].status == 500            # RFC 3311 §5.2: our answer is pending
    w.agent.answer_waiting("INVITE", 200, w.agent.sdp("8 101", direction="recvonly"))
    assert w.carrier.finals("INVITE")[-1].status == 200
    assert w.media[0].a.direction == "sendonly"
    hang_up(w)


def test_glare_the_agents_reinvite_crossing_our_relayed_one_gets_491(wire):
    """Our relayed hold is pending at the agent when the agent's own re-INVITE comes: 491 to it (§14.2);
    a later UPDATE with an offer gets 491 too (RFC 3311 §5.2); our hold then completes."""
    w = wire()
    bridged_call(w)
    w.agent.on_modify = lambda request: None
    w.carrier.send("INVITE", w.carrier.sdp(direction="sendonly"))
    w.agent.send("INVITE", w.agent.sdp("8 101", direction="sendonly"))
    assert w.agent.finals("INVITE")[-1].status == 491
    w.agent.send("UPDATE", w.agent.sdp("8 101", direction="sendonly"))
    assert w.agent.finals("UPDATE")[-1].status == 491
    assert len([r for r in w.carrier.requests if r.method == "INVITE"]) == 0   # nothing of it reached the carrier
    w.agent.answer_waiting("INVITE", 200, w.agent.sdp("8 101", direction="recvonly"))
    assert w.carrier.finals("INVITE")[-1].status == 200
    hang_up(w)


def test_carrier_hanging_up_while_its_hold_is_relayed_gets_487_for_it(wire):
    """BYE from the carrier while the agent has not answered the relayed hold: the carrier's re-INVITE is
    answered 487 (RFC 3261 §15.1.2), both legs end, nothing left."""
    w = wire()
    bridged_call(w)
    w.agent.on_modify = lambda request: None
    w.carrier.send("INVITE", w.carrier.sdp(direction="sendonly"))
    w.carrier.send("BYE")
    assert w.carrier.finals("INVITE")[-1].status == 487
    assert w.agent.got("BYE")
    w.settle()
    assert w.records[0].end_reason == "caller_hangup"


def test_agent_answering_491_is_passed_back_and_nothing_changes(wire):
    """Glare at the agent: it answers our relayed hold 491 (its own re-INVITE crossed); the carrier gets 491
    (it retries after its §14.1 wait) and both legs keep their media."""
    w = wire()
    bridged_call(w)
    w.agent.on_modify = lambda request: (491, None)
    w.carrier.send("INVITE", w.carrier.sdp(direction="sendonly"))
    assert w.carrier.finals("INVITE")[-1].status == 491
    assert (w.media[0].a.direction, w.media[0].b.direction) == ("sendrecv", "sendrecv")
    w.agent.on_modify = w.agent.rfc3264_answer
    w.carrier.send("INVITE", w.carrier.sdp(direction="sendonly"))
    assert w.carrier.finals("INVITE")[-1].status == 200 and w.media[0].a.direction == "sendonly"
    hang_up(w)


def test_a_2xx_to_our_reinvite_after_the_call_ended_gets_ack_and_bye(wire):
    """The agent keeps our relayed hold waiting past the BYE and answers it 200 afterwards: the node ACKs the
    2xx and sends BYE in the dialog it revived, so no dialog stays open."""
    w = wire()
    bridged_call(w)
    w.agent.on_modify = lambda request: None
    w.agent.keep_waiting_on_bye = True
    w.carrier.send("INVITE", w.carrier.sdp(direction="sendonly"))
    w.carrier.send("BYE")
    assert w.manager.calls == {}
    byes_before = len(w.agent.got("BYE"))
    w.agent.answer_waiting("INVITE", 200, w.agent.sdp("8 101", direction="recvonly"))
    assert len(w.agent.got("BYE")) == byes_before + 1
    w.settle()
