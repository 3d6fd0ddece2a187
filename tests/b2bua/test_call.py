"""The call controller with fake legs and media on a task.Clock, and billing on the in-memory session store
(the fakes: ``tests/support/callfakes.py``).

Each test asserts outcomes: what each leg was told, the call record, the money.
After every scenario nothing may be left pending: no controller timer, no open
billing session, no open leg.
"""

from __future__ import annotations

import pytest
from twisted.internet.defer import succeed
from twisted.internet.task import Clock

from b2bua.call import Call
from b2bua.callmedia import agent_phrase_for, phrase_for
from b2bua.callevents import Answered, Bye, Cancelled, Failed, LegEnded, Ringing
from b2bua.callports import Say
from b2bua.callstate import St
from b2bua.identity import CallerIdentity
from b2bua.routing import Router
from billing.profile import CallerClass, ChargingStart, Increment
from billing.session import CallBilling
from tests.billing.test_session_harness import MemorySessionStore
from tests.support.callfakes import (CALLER, FakeA, FakeB, FakeMedia, Profile, World, answer_agent, billing_profile,
                                     caller_hangs_up, make_call, nothing_pending, type_keys)


def test_basic_call_hung_up_by_caller():
    """Answer, announce the minutes, ring, bridge, charge from answer; caller BYE ends the agent too."""
    w = make_call(1000)
    assert w.a.sent == [200] and w.media.said[0].say is Say.MINUTES and w.media.said[0].minutes == 8
    assert w.legs == []                        # the agent is rung only after the announcement
    w.clock.advance(5)
    assert [leg.agent for leg in w.legs] == ["sip:a1@agents"]
    answer_agent(w)
    assert w.call.state is St.BRIDGED and w.media.bridged
    w.clock.advance(90)                        # 1:30 talk -> 2 minutes at 60/60
    caller_hangs_up(w)
    assert w.b().sent == ["BYE"]
    nothing_pending(w)
    rec = w.records[0]
    assert (rec.caller, rec.identity_source, rec.agent_answered, rec.end_reason) == (
        CALLER, "from", "sip:a1@agents", "caller_hangup")
    assert (rec.billed_s, rec.charge_cents) == (120, 240)
    assert w.store.balances[("demo", CALLER)] == 1000 - 240


def test_no_credit_is_told_and_no_agent_is_rung():
    """A balance that cannot pay the first increment: the caller hears why, then BYE; no agent leg."""
    w = make_call(50)
    assert w.media.said[0].say is Say.NO_CREDIT
    w.clock.advance(5)
    assert w.a.sent == [200, "BYE"] and w.legs == []
    nothing_pending(w)
    assert w.records[0].end_reason == "no_credit" and w.records[0].charge_cents == 0


def test_unknown_service_number_is_404():
    w = make_call(1000, dialled="+493099999999")
    assert w.a.sent == [404] and w.call.state is St.DONE and w.records[0].end_reason == "unknown_service_number"


def test_unidentified_caller_without_media_gets_403():
    """Without an announcement hook an unidentified caller is refused 403."""
    w = make_call(1000, identity=CallerIdentity(None, "none", True, None), with_media=False)
    assert w.a.sent == [403]


def test_withheld_caller_is_told_to_show_the_number():
    w = make_call(1000, identity=CallerIdentity(None, "none", True, None))
    assert w.media.said[0].say is Say.WITHHELD
    w.clock.advance(5)
    assert w.a.sent == [200, "BYE"] and w.legs == []


def test_first_agent_busy_second_answers():
    w = make_call(1000)
    w.clock.advance(5)
    w.b(0).final_status = 486
    w.b(0).ended = True
    w.call.handle(Failed(w.b(0), 486))
    assert [leg.agent for leg in w.legs] == ["sip:a1@agents", "sip:a2@agents"]
    answer_agent(w)
    w.b().ended = True
    w.call.handle(Bye(w.b()))
    assert w.a.sent[-1] == "BYE"
    nothing_pending(w)
    assert w.records[0].agent_tried == "sip:a1@agents,sip:a2@agents"
    assert w.records[0].end_reason == "agent_hangup"


def test_no_agent_answers_ring_timeouts_then_carrier_leg_ends():
    """Each agent rings ring_timeout_s, is cancelled; after the last the caller (early media) is told that
    nobody can take the call, and then the carrier's INVITE gets 480."""
    w = make_call(1000, answer_mode="early_media")
    assert w.a.sent == [183]
    w.clock.advance(5)
    for i in range(2):
        w.clock.advance(20)
        assert w.b(i).sent == ["CANCEL"]
        w.b(i).ended = True
        w.call.handle(Failed(w.b(i), 487))
    assert w.call.state is St.NO_AGENT and w.media.said[-1].say is Say.NO_AGENT and w.a.sent == [183]
    w.clock.advance(5)
    assert w.a.sent == [183, 480]
    nothing_pending(w)
    assert w.records[0].end_reason == "no_agent"


def test_all_agents_busy_is_486():
    """All busy: after the no-agent prompt (early media) the carrier's INVITE gets 486."""
    w = make_call(1000, answer_mode="early_media")
    w.clock.advance(5)
    for i in range(2):
        w.b(i).ended = True
        w.call.handle(Failed(w.b(i), 486))
    w.clock.advance(5)
    assert w.a.sent[-1] == 486
    nothing_pending(w)


def test_cancel_while_agent_rings():
    """Carrier CANCEL while the agent rings: CANCEL to the agent, 487 to the carrier, nothing billed."""
    w = make_call(1000, answer_mode="early_media")
    w.clock.advance(5)
    w.call.handle(Ringing(w.b(), 180))
    w.call.handle(Cancelled(w.a))
    assert w.b().sent == ["CANCEL"] and w.a.sent[-1] == 487
    w.b().ended = True
    w.call.handle(Failed(w.b(), 487))
    nothing_pending(w)
    assert w.records[0].charge_cents == 0 and w.store.balances[("demo", CALLER)] == 1000


def test_200_crossing_cancel_is_acked_and_byed():
    """The agent's 200 crosses our CANCEL: the agent gets BYE, nothing left open."""
    w = make_call(1000, answer_mode="early_media")
    w.clock.advance(5)
    w.call.handle(Cancelled(w.a))
    assert w.b().sent == ["CANCEL"]
    w.call.handle(Answered(w.b(), b"v=0"))
    assert w.b().sent == ["CANCEL", "BYE"]
    nothing_pending(w)


@pytest.mark.parametrize("mode, expected_start_after_answer_s", [
    (ChargingStart.ANSWER, 0), (ChargingStart.ANSWER_10, 10), (ChargingStart.ANSWER_30, 30)])
def test_charging_start_modes(mode, expected_start_after_answer_s):
    """Talk 65 s after the agent answered: 60/60 from answer+N bills 2 minutes, or 1 when N >= 10."""
    w = make_call(1000, profile=Profile("demo", billing_profile(charging_starts=mode)))
    w.clock.advance(5)
    answer_agent(w)
    w.clock.advance(65)
    caller_hangs_up(w)
    nothing_pending(w)
    billed = w.records[0].billed_s
    assert billed == (120 if expected_start_after_answer_s == 0 else 60)


def test_charging_after_announcement_counts_the_ringing():
    """after_announcement: the time the agent rings is billed too."""
    w = make_call(1000, profile=Profile("demo", billing_profile(charging_starts=ChargingStart.AFTER_ANNOUNCEMENT)))
    w.clock.advance(5)
    w.clock.advance(50)                        # ringing 50 s
    answer_agent(w)
    w.clock.advance(20)                        # 70 s since the announcement ended
    caller_hangs_up(w)
    assert w.records[0].billed_s == 120


def test_warning_then_cut_off_when_credit_is_spent():
    """3 minutes of credit: warning to both sides at T-120 s, mixed; at T the last words, then BYE to both."""
    w = make_call(360)                         # 3 minutes at 1.20
    w.clock.advance(5)
    answer_agent(w)
    w.clock.advance(59)
    assert [a.say for a in w.media.said] == [Say.MINUTES]
    w.clock.advance(1)
    warning = w.media.said[-1]
    assert warning.say is Say.WARNING and warning.to_caller and warning.to_agent and warning.mixed
    w.clock.advance(120)
    assert w.media.said[-1].say is Say.USED_UP
    w.clock.advance(5)
    assert w.a.sent[-1] == "BYE" and w.b().sent == ["BYE"]
    nothing_pending(w)
    assert w.records[0].end_reason == "credit_exhausted"
    assert w.records[0].charge_cents == 360 and w.store.balances[("demo", CALLER)] == 0


def test_a_30_s_warning_says_30_seconds_to_the_caller_and_short_words_to_the_agent():
    """warn_before_s = 30: the warning comes 30 s before the end and says "dreißig Sekunden" (not "eine
    Minute"); the agent hears its own short words with the same time (agent_warning "words", the default)."""
    w = make_call(360, profile=Profile("demo", billing_profile(warn_before_s=30)))
    w.clock.advance(5)
    answer_agent(w)
    w.clock.advance(149)
    assert [a.say for a in w.media.said] == [Say.MINUTES]
    w.clock.advance(1)                         # T-30 s of the 3 minutes
    warning = w.media.said[-1]
    assert warning.say is Say.WARNING and warning.seconds == 30 and warning.to_agent and not warning.agent_tone
    assert phrase_for(warning, "de") == ["credit_lasts_still", "dreissig", "sekunden"]
    assert agent_phrase_for(warning, "de") == ["agent_credit_left", "dreissig", "sekunden"]
    assert agent_phrase_for(warning, "en") == ["agent_credit_left", "thirty", "seconds"]
    w.clock.advance(30)
    assert w.media.said[-1].say is Say.USED_UP
    w.clock.advance(5)
    nothing_pending(w)


def test_agent_warning_tone_gives_the_agent_the_beeps_instead_of_words():
    """agent_warning = "tone": the same warning, but the agent hears the three beeps (no words)."""
    w = make_call(360, agent_warning="tone")
    w.clock.advance(5)
    answer_agent(w)
    w.clock.advance(60)
    warning = w.media.said[-1]
    assert warning.say is Say.WARNING and warning.seconds == 120 and warning.to_agent and warning.agent_tone
    assert agent_phrase_for(warning, "de") is None
    assert phrase_for(warning, "de") == ["credit_lasts_still", "zwei", "minuten"]
    caller_hangs_up(w)
    nothing_pending(w)


def test_a_call_starting_on_less_credit_than_warn_before_s_is_warned_with_what_is_left():
    """45 s of credit at 1/1 and a 120 s warning: the warning comes as the call is bridged and says the 45
    seconds there are, not two minutes."""
    w = make_call(90, profile=Profile("demo", billing_profile(increment=Increment(1, 1))))   # 0.90 at 1.20/min
    w.clock.advance(5)
    answer_agent(w)
    w.clock.advance(0)
    warning = w.media.said[-1]
    assert warning.say is Say.WARNING and warning.seconds == 45
    assert phrase_for(warning, "en") == ["credit_lasts_still", "forty", "five", "seconds"]
    caller_hangs_up(w)
    nothing_pending(w)


def test_the_warning_after_a_top_up_says_the_time_left_then():
    """Warned at T-120 s of 3 minutes, topped up with 10 more minutes 60 s before the end: the warning comes
    again 120 s before the new end and says two minutes again (billing re-arms it; the call says what is left)."""
    w = make_call(360)
    w.clock.advance(5)
    answer_agent(w)
    w.clock.advance(60)
    assert [(a.say, a.seconds) for a in w.media.said] == [(Say.MINUTES, None), (Say.WARNING, 120)]
    w.store.credit("demo", CALLER, 1200, "topup-1")
    w.clock.advance(600 - 1)
    assert w.media.said[-1].say is Say.TOPPED_UP
    w.clock.advance(1)                         # the new end is 185 + 600 s: 120 s before it
    assert (w.media.said[-1].say, w.media.said[-1].seconds) == (Say.WARNING, 120)
    caller_hangs_up(w)
    nothing_pending(w)


def test_top_up_during_call_extends_it():
    """A top-up at T-60 s moves the cut-off: the call is still up where it would have ended, and the caller
    hears (mixed over the conversation) that the credit was topped up and how long it lasts now."""
    w = make_call(360)
    w.clock.advance(5)
    answer_agent(w)
    w.clock.advance(120)
    w.store.credit("demo", CALLER, 1200, "topup-1")
    topped_up = w.media.said[-1]
    assert topped_up.say is Say.TOPPED_UP and topped_up.to_caller and topped_up.mixed
    assert topped_up.minutes == 11            # 1 minute left of the 3, and 12.00 buys 10 more
    w.clock.advance(70)
    assert w.call.state is St.BRIDGED
    caller_hangs_up(w)
    nothing_pending(w)
    assert w.records[0].billed_s == 240


def test_max_duration_aborts_both_legs():
    """The configured hard limit ends a call with plenty of credit: BYE to both, billed to that moment."""
    w = make_call(100_000, max_duration_s=600)
    w.clock.advance(5)
    answer_agent(w)
    w.clock.advance(594)
    assert w.call.state is St.BRIDGED
    w.clock.advance(1)
    assert w.a.sent[-1] == "BYE" and w.b().sent == ["BYE"]
    nothing_pending(w)
    assert w.records[0].end_reason == "max_duration" and w.records[0].billed_s == 600


def make_pin_call(balance_cents=1000, pins=None):
    """A withheld caller on a profile that takes PINs; `pins` maps PIN -> number."""
    pins = {"4711": CALLER} if pins is None else pins
    clock = Clock()
    clock.advance(1_800_000_000)
    store = MemorySessionStore()
    store.set_balance("demo", CALLER, balance_cents)
    billing = CallBilling(store, clock, node_id="n1", lease_s=60)
    w = World(clock, store, billing, FakeMedia(clock), FakeA())
    profile = Profile("demo", billing_profile())

    def dialer(agent, ident, offer, call):
        leg = FakeB(agent)
        w.legs.append(leg)
        return leg

    w.call = Call(call_id="c1", reactor=clock, a=w.a, route=Router([profile], "DE").route("+493012345678"),
                  identity=CallerIdentity(None, "none", True, None), dialer=dialer, media=w.media, billing=billing,
                  record=w.records.append, max_duration_s=3600, answer_mode="early_media", withheld_policy="pin",
                  pin_lookup=lambda profile_name, pin: succeed(pins.get(pin)))
    w.call.start()
    return w


def test_withheld_caller_types_pin_and_is_billed_on_that_account():
    """Withheld number, profile withheld=pin: answered (200 even in early-media mode), asked, PIN#, minutes, agent."""
    w = make_pin_call()
    assert w.a.sent == [200] and w.media.said[0].say is Say.WITHHELD
    w.clock.advance(5)
    type_keys(w, "4711#")
    assert w.call.identity.number == CALLER and w.call.identity.source == "pin"
    assert w.media.said[-1].say is Say.MINUTES
    w.clock.advance(5)
    answer_agent(w)
    w.clock.advance(30)
    caller_hangs_up(w)
    nothing_pending(w)
    assert (w.records[0].caller, w.records[0].identity_source, w.records[0].charge_cents) == (CALLER, "pin", 120)


def test_three_wrong_pins_end_the_call_without_an_agent():
    """Each wrong PIN is told; after the third the caller hears why and gets BYE; nobody is rung or billed."""
    w = make_pin_call()
    for _ in range(3):
        w.clock.advance(5)
        type_keys(w, "0000#")
    assert [a.say for a in w.media.said].count(Say.PIN_WRONG) == 3
    w.clock.advance(10)
    assert w.a.sent[-1] == "BYE" and w.legs == []
    nothing_pending(w)
    assert w.records[0].end_reason == "pin_wrong" and w.records[0].caller is None


def test_no_pin_typed_times_out_as_a_wrong_try():
    """Nothing typed for PIN_TIMEOUT_S after the prompt counts as a wrong PIN."""
    w = make_pin_call()
    w.clock.advance(5)                         # the prompt ends
    w.clock.advance(Call.PIN_TIMEOUT_S - 1)
    assert w.media.said[-1].say is Say.WITHHELD
    w.clock.advance(1)
    assert w.media.said[-1].say is Say.PIN_WRONG


def test_agent_answer_mode_rings_at_once_and_answers_with_the_agent():
    """answer_mode "agent": no minutes spoken; the agent is rung at once, 180 relayed, the carrier's
    leg answered with the agent, charged from that answer, and the hard limit counts from it."""
    w = make_call(100_000, answer_mode="agent", max_duration_s=600)
    assert w.media.said == [] and w.a.sent == []
    assert [leg.agent for leg in w.legs] == ["sip:a1@agents"]
    assert w.call.pending_timers() == 1           # the ring timer only: the limit starts at answer
    w.clock.advance(3)
    answer_agent(w)
    assert w.a.sent == [180, 200] and w.call.state is St.BRIDGED
    w.clock.advance(599)
    assert w.call.state is St.BRIDGED
    w.clock.advance(1)
    nothing_pending(w)
    rec = w.records[0]
    assert (rec.end_reason, rec.billed_s, rec.charge_cents) == ("max_duration", 600, 10 * 120)


def test_agent_answer_mode_still_tells_a_caller_without_credit():
    """answer_mode "agent" speaks no minutes, but a caller who cannot pay still hears why."""
    w = make_call(50, answer_mode="agent")
    assert w.a.sent == [200] and w.media.said[0].say is Say.NO_CREDIT and w.legs == []


class SilentA(FakeA):
    """A carrier that never answers our BYE: its leg ends only when our BYE transaction times out."""

    def bye(self, reason=None):
        self.sent.append("BYE")


class SilentB(FakeB):
    """An agent's phone that never answers our BYE."""

    def bye(self, reason=None):
        self.sent.append("BYE")


def per_second_profile() -> Profile:
    """1.20 EUR a minute in 1/1 increments: two cents a second."""
    return Profile("demo", billing_profile(increment=Increment(1, 1)))


def test_billing_ends_when_the_agent_hangs_up_though_the_carrier_never_answers_our_bye():
    """The agent hangs up after 3 s of charging; our BYE to the carrier goes unanswered for 32 s: the
    caller pays 3 s, and the record's end is the agent's hang-up (on the old code: 35 s billed)."""
    w = make_call(1000, profile=per_second_profile())
    w.call.a = w.a = silent = SilentA()
    silent.answered, silent.final_status = True, 200
    w.clock.advance(5)
    answer_agent(w)
    hangup_ms = int((w.clock.seconds() + 3) * 1000)
    w.clock.advance(3)
    w.b().ended = True
    w.call.handle(Bye(w.b()))
    assert silent.sent[-1] == "BYE" and w.call.state is St.CLOSING
    w.clock.advance(32)                        # Timer F of our BYE: the carrier's leg ends unanswered
    silent.ended = True
    w.call.handle(LegEnded(w.a))
    nothing_pending(w)
    rec = w.records[0]
    assert (rec.billed_s, rec.charge_cents, rec.end_ms) == (3, 6, hangup_ms)
    assert w.store.balances[("demo", CALLER)] == 1000 - 6


def test_billing_ends_when_the_caller_hangs_up_though_the_agent_never_answers_our_bye():
    """The caller hangs up after 5 s; the agent's phone never answers our BYE: 5 s billed, not 37."""
    w = make_call(1000, profile=per_second_profile(), dialer_leg=SilentB)
    w.clock.advance(5)
    answer_agent(w)
    w.clock.advance(5)
    caller_hangs_up(w)
    assert w.b().sent == ["BYE"] and w.call.state is St.CLOSING
    w.clock.advance(32)
    w.b().ended = True
    w.call.handle(LegEnded(w.a))
    nothing_pending(w)
    assert (w.records[0].billed_s, w.records[0].charge_cents) == (5, 10)
    assert w.store.balances[("demo", CALLER)] == 1000 - 10


def test_a_side_gone_silent_is_billed_to_its_last_sign_of_life():
    """The relay reports a leg silent (no RTP for the timeout; its carrier's connection gone): the call is
    aborted, and billed up to when that leg was last heard, not up to the timeout."""
    w = make_call(1000, profile=per_second_profile())
    w.clock.advance(5)
    answer_agent(w)
    last_heard_ms = int((w.clock.seconds() + 2) * 1000)
    w.clock.advance(62)                        # 2 s of media, then 60 s of silence
    w.media.silent_since_ms = last_heard_ms
    w.call.abort("media_timeout")
    w.a.ended = True
    w.call.handle(LegEnded(w.a))
    nothing_pending(w)
    rec = w.records[0]
    assert (rec.end_reason, rec.billed_s, rec.charge_cents, rec.end_ms) == ("media_timeout", 2, 4, last_heard_ms)


def test_a_stopping_node_settles_and_records_a_call_whose_legs_never_finish():
    """``give_up_on_legs`` (a node stopping): a call whose BYEs are not answered yet is finished anyway,
    settled at the instant it was ended, and recorded."""
    w = make_call(1000, profile=per_second_profile(), dialer_leg=SilentB)
    w.call.a = w.a = silent = SilentA()
    silent.answered, silent.final_status = True, 200
    w.clock.advance(5)
    answer_agent(w)
    w.clock.advance(4)
    w.call.abort("node_stopped")
    assert w.call.state is St.CLOSING
    w.clock.advance(1)
    w.call.give_up_on_legs()
    assert w.call.state is St.DONE and w.records[0].end_reason == "node_stopped"
    assert (w.records[0].billed_s, w.store.balances[("demo", CALLER)]) == (4, 1000 - 8)


def another_call(w: World, call_id: str, profile: Profile) -> tuple[Call, FakeA, FakeMedia]:
    """A second call of the same caller on the same node (same billing, same store), its agent answered."""
    a, media = FakeA(), FakeMedia(w.clock)

    def dialer(agent, ident, offer, call):
        leg = FakeB(agent)
        w.legs.append(leg)
        return leg

    route = Router([profile], "DE").route("+493012345678")
    call = Call(call_id=call_id, reactor=w.clock, a=a, route=route,
                identity=CallerIdentity(CALLER, "from", False, CallerClass.LANDLINE), dialer=dialer, media=media,
                billing=w.billing, record=w.records.append, max_duration_s=4 * 3600)
    call.start()
    w.clock.advance(5)
    call.handle(Ringing(w.legs[-1], 180))
    call.handle(Answered(w.legs[-1], b"v=0 agent"))
    return call, a, media


def test_the_refund_of_the_callers_other_call_is_not_announced_as_a_top_up():
    """A caller has two calls at 1/1; the second ends after 10 s and its settlement refunds the minute it
    had paid ahead. The first call's credit lasts longer by that refund, but its caller hears no "topped up"
    (the balance rose; nothing was topped up). A real top-up afterwards is heard, on the first call only."""
    profile = per_second_profile()
    w = make_call(1000, profile=profile)
    w.clock.advance(5)
    answer_agent(w)
    first_end_ms = w.call.credit_ends_ms
    second, second_a, second_media = another_call(w, "c2", profile)
    w.clock.advance(10)
    second_a.ended = True
    second.handle(Bye(second_a))
    assert second.state is St.DONE and w.records[-1].charge_cents == 20
    assert [kind for (_, _, kind, _, _, sid) in w.store.ledger if sid == second.session.session_id] == [
        "call_debit", "call_refund"]
    assert Say.TOPPED_UP not in [a.say for a in w.media.said]
    assert w.call.credit_ends_ms > first_end_ms - 60_000      # the refund came back to the shared credit
    assert "another call of the caller refunded" in " ".join(what for _, what in w.call.events)
    w.store.credit("demo", CALLER, 120, "topup-2")
    assert [a.say for a in w.media.said].count(Say.TOPPED_UP) == 1
    assert Say.TOPPED_UP not in [a.say for a in second_media.said]
    caller_hangs_up(w)
    nothing_pending(w)

