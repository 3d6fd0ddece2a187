"""The Reason (RFC 3326) the call gives each BYE and CANCEL it sends, with fake legs on a Clock.

What each reason is, and why, is :mod:`b2bua.clearing`; here: that the call picks the right one for the
way it ends, and gives it to the leg that is ended because of the other (or of the credit).
"""

from __future__ import annotations

from b2bua.callevents import Bye, Cancelled, Failed, LegBroken, MediaDead, Ringing
from b2bua.clearing import CREDIT_EXHAUSTED, NO_ANSWER, NORMAL_CLEARING, TEMPORARY_FAILURE, TIMER_EXPIRED
from tests.support.callfakes import answer_agent, caller_hangs_up, make_call, nothing_pending


def test_the_caller_hangs_up_the_agent_gets_normal_clearing():
    """Carrier BYE while bridged: our BYE to the agent says Q.850 16; the caller's leg got no BYE from us."""
    w = make_call(1000)
    w.clock.advance(5)
    answer_agent(w)
    caller_hangs_up(w)
    assert w.b().reasons == [("BYE", NORMAL_CLEARING)] and w.a.reasons == []
    nothing_pending(w)


def test_the_agent_hangs_up_the_caller_gets_normal_clearing():
    """Agent BYE while bridged: our BYE to the carrier says Q.850 16."""
    w = make_call(1000)
    w.clock.advance(5)
    answer_agent(w)
    w.b().ended = True
    w.call.handle(Bye(w.b()))
    assert w.a.reasons == [("BYE", NORMAL_CLEARING)] and w.b().reasons == []
    nothing_pending(w)


def test_the_caller_cancels_while_the_agent_rings():
    """Carrier CANCEL while the agent rings: our CANCEL to the agent says Q.850 16 (ISUP's caller abandon)."""
    w = make_call(1000, answer_mode="early_media")
    w.clock.advance(5)
    w.call.handle(Ringing(w.b(), 180))
    w.call.handle(Cancelled(w.a))
    assert w.b().reasons == [("CANCEL", NORMAL_CLEARING)]
    w.b().ended = True
    w.call.handle(Failed(w.b(), 487))
    nothing_pending(w)


def test_the_caller_hangs_up_while_the_agent_rings():
    """Carrier BYE after the announcement, the agent still ringing: CANCEL with Q.850 16."""
    w = make_call(1000)
    w.clock.advance(5)
    w.call.handle(Ringing(w.b(), 180))
    caller_hangs_up(w)
    assert w.b().reasons == [("CANCEL", NORMAL_CLEARING)]


def test_an_agent_that_does_not_answer_in_time_is_cancelled_with_no_answer():
    """Ring timeout: CANCEL with Q.850 19, and the hunt goes on to the next agent."""
    w = make_call(1000, answer_mode="early_media")
    w.clock.advance(5)
    w.call.handle(Ringing(w.b(0), 180))
    w.clock.advance(20)
    assert w.b(0).reasons == [("CANCEL", NO_ANSWER)]
    w.b(0).ended = True
    w.call.handle(Failed(w.b(0), 487))
    assert len(w.legs) == 2


def test_a_failed_hunt_after_the_announcement_tells_the_caller_busy_in_the_bye():
    """Answered for the announcement, every agent busy: after the no-agent words the caller's BYE says SIP 486
    Busy Here, the status an unanswered caller gets."""
    w = make_call(1000)
    w.clock.advance(5)
    for i in range(2):
        w.b(i).ended = True
        w.call.handle(Failed(w.b(i), 486))
    assert [what for what, _ in w.a.reasons] == []         # not while the caller is told nobody can answer
    w.clock.advance(5)
    (reason,) = [r for what, r in w.a.reasons if what == "BYE"]
    assert reason.value == 'SIP;cause=486;text="Busy Here"'
    nothing_pending(w)


def test_a_failed_hunt_without_busy_agents_says_temporarily_unavailable():
    """One agent busy, one declining 603: SIP 480 in the caller's BYE."""
    w = make_call(1000)
    w.clock.advance(5)
    w.b(0).ended = True
    w.call.handle(Failed(w.b(0), 486))
    w.b(1).ended = True
    w.call.handle(Failed(w.b(1), 603))
    w.clock.advance(5)                  # the no-agent words
    assert [r.value for _, r in w.a.reasons] == ['SIP;cause=480;text="Temporarily Unavailable"']


def test_spent_credit_ends_both_legs_saying_so():
    """The credit runs out: after the last words both BYEs say SIP 402 "Credit exhausted"."""
    w = make_call(360)
    w.clock.advance(5)
    answer_agent(w)
    for _ in range(190):
        w.clock.advance(1)
    assert w.a.reasons == [("BYE", CREDIT_EXHAUSTED)] and w.b().reasons == [("BYE", CREDIT_EXHAUSTED)]
    nothing_pending(w)


def test_the_maximum_duration_carries_no_reason():
    """The maximum duration ends the call: BYEs without a Reason (no cause says it truthfully)."""
    w = make_call(100000, max_duration_s=100)
    w.clock.advance(5)
    answer_agent(w)
    for _ in range(100):
        w.clock.advance(1)
    assert w.a.reasons == [("BYE", None)] and w.b().reasons == [("BYE", None)]


def test_an_expired_session_ends_both_legs_with_timer_expiry():
    """The carrier's session timer runs out while bridged (LegBroken "session_expired"): both BYEs say
    Q.850 102 "Recovery on timer expiry"."""
    w = make_call(100000)
    w.clock.advance(5)
    answer_agent(w)
    w.call.handle(LegBroken(w.a, "session_expired"))
    assert w.a.reasons == [("BYE", TIMER_EXPIRED)] and w.b().reasons == [("BYE", TIMER_EXPIRED)]
    assert w.records[0].end_reason == "session_expired"
    nothing_pending(w)


def test_a_dead_media_worker_ends_both_legs_with_temporary_failure():
    """Media reports the call's worker died (MediaDead "media_failed"): both BYEs say Q.850 41."""
    w = make_call(100000)
    w.clock.advance(5)
    answer_agent(w)
    w.call.handle(MediaDead("media_failed"))
    assert w.a.reasons == [("BYE", TEMPORARY_FAILURE)] and w.b().reasons == [("BYE", TEMPORARY_FAILURE)]
    assert w.records[0].end_reason == "media_failed"
    nothing_pending(w)


def test_media_that_falls_silent_while_the_agent_rings_cancels_it_with_timer_expiry():
    """The caller's media falls silent during the hunt (MediaDead "media_timeout"): the ringing agent's CANCEL
    and the caller's BYE say Q.850 102."""
    w = make_call(100000)
    w.clock.advance(5)
    w.call.handle(Ringing(w.b(), 180))
    w.call.handle(MediaDead("media_timeout"))
    assert w.b().reasons == [("CANCEL", TIMER_EXPIRED)] and w.a.reasons == [("BYE", TIMER_EXPIRED)]
