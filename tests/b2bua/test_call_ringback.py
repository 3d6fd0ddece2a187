"""What the caller hears while the agents ring, and when none answers: the controller on fake legs and media
(``tests/support/callfakes.py``) on a task.Clock, billing on the in-memory store.

Pinned: the ringback starts when the minutes have been said and plays on, unbroken, from one agent to the
next; it stops before the bridge, at the caller's hang-up and when the hunt ends; a failed hunt is told to a
caller who hears us (answered or early media) and then ends with BYE (or the final status), nothing charged;
a carrier whose leg never carried our audio (answer mode "agent") gets the final status as before.
"""

from __future__ import annotations

import pytest

from b2bua.callevents import Bye, Cancelled, Failed
from b2bua.callports import Say
from b2bua.callstate import St
from tests.support.callfakes import CALLER, answer_agent, caller_hangs_up, make_call, nothing_pending


def agent_fails(w, i, status):
    w.b(i).ended = True
    w.b(i).final_status = status
    w.call.handle(Failed(w.b(i), status))


def timeline(w) -> list[str]:
    return [what for _, what in w.call.events]


def test_ringback_from_the_announcements_end_to_the_answer_then_bridged_without_it():
    """Answer mode: the minutes (5 s), then ringback while the agent rings, stopped at its answer before the
    media is bridged; the timeline says how long it played."""
    w = make_call(1000)
    assert w.media.ringback_log == []               # not during the minutes
    w.clock.advance(5)
    assert w.media.ringing and w.media.ringback_log == [(1_800_000_005, "start")]
    w.clock.advance(3)
    assert not w.media.bridged
    answer_agent(w)
    assert not w.media.ringing and w.media.bridged
    assert w.media.ringback_log == [(1_800_000_005, "start"), (1_800_000_008, "stop")]
    assert "ringback (de) while the agents ring" in timeline(w)
    assert "ringback (de) until the agent answered after 3.0 s" in timeline(w)
    caller_hangs_up(w)
    nothing_pending(w)


def test_ringback_plays_on_from_a_busy_agent_to_the_next():
    """Busy, then the next agent: one start, no stop in between (no restart glitch), stopped at the answer."""
    w = make_call(1000)
    w.clock.advance(5)
    w.clock.advance(2)
    agent_fails(w, 0, 486)
    assert len(w.legs) == 2 and w.media.ringing
    w.clock.advance(4)
    answer_agent(w)
    assert [what for _, what in w.media.ringback_log] == ["start", "stop"]
    assert w.media.ringback_log[1][0] - w.media.ringback_log[0][0] == 6


@pytest.mark.parametrize("answer_mode", ["answer", "early_media"])
def test_caller_hanging_up_while_agents_ring_stops_the_ringback(answer_mode):
    """The caller gives up while the agent rings: ringback stopped, the agent cancelled, nothing charged."""
    w = make_call(1000, answer_mode=answer_mode)
    w.clock.advance(5)
    assert w.media.ringing
    if answer_mode == "early_media":
        w.call.handle(Cancelled(w.a))
    else:
        caller_hangs_up(w)
    assert not w.media.ringing and w.b().sent == ["CANCEL"]
    agent_fails(w, 0, 487)
    nothing_pending(w)
    assert w.records[0].charge_cents == 0 and w.store.balances[("demo", CALLER)] == 1000


def test_no_agent_answers_the_caller_is_told_not_charged_then_bye():
    """Both agents ring out: the ringback stops, the caller hears "nobody can take your call now; you were
    not charged", then BYE; billed nothing, the balance untouched, end reason no_agent as before."""
    w = make_call(1000)
    w.clock.advance(5)
    for i in range(2):
        w.clock.advance(20)
        assert w.b(i).sent == ["CANCEL"]
        agent_fails(w, i, 487)
    assert w.call.state is St.NO_AGENT and not w.media.ringing
    assert w.media.said[-1].say is Say.NO_AGENT and w.media.said[-1].to_caller
    assert w.a.sent == [200]                        # no BYE while the words play
    w.clock.advance(5)
    assert w.a.sent == [200, "BYE"]
    nothing_pending(w)
    rec = w.records[0]
    assert (rec.end_reason, rec.billed_s, rec.charge_cents) == ("no_agent", 0, 0)
    assert w.store.balances[("demo", CALLER)] == 1000
    assert "ringback (de) until the hunt ended after 40.0 s" in timeline(w)


def test_no_agent_after_charging_at_the_announcement_is_still_free():
    """Even where charging starts with the announcement's end, it starts only at the bridge: a hunt that
    finds no agent costs nothing."""
    from billing.profile import ChargingStart
    from tests.support.callfakes import Profile, billing_profile
    w = make_call(1000, profile=Profile("demo", billing_profile(charging_starts=ChargingStart.AFTER_ANNOUNCEMENT)))
    w.clock.advance(5)
    agent_fails(w, 0, 486)
    agent_fails(w, 1, 486)
    w.clock.advance(5)
    nothing_pending(w)
    assert (w.records[0].charge_cents, w.store.balances[("demo", CALLER)]) == (0, 1000)


@pytest.mark.parametrize("hangup", ["bye", "abort"])
def test_hanging_up_during_the_no_agent_words_ends_cleanly(hangup):
    """The caller hangs up (or the call is aborted) while it hears that no agent took the call: the words
    stop, nothing more is sent to the gone caller (abort: BYE), the record keeps end reason no_agent."""
    w = make_call(1000)
    w.clock.advance(5)
    agent_fails(w, 0, 486)
    agent_fails(w, 1, 486)
    w.clock.advance(2)
    if hangup == "bye":
        caller_hangs_up(w)
        assert w.a.sent == [200]
    else:
        w.call.abort("media_timeout")
        assert w.a.sent == [200, "BYE"]
    w.clock.advance(5)                              # the stopped prompt's end is late news
    nothing_pending(w)
    assert (w.records[0].end_reason, w.records[0].charge_cents) == ("no_agent", 0)


def test_carrier_cancelling_during_the_no_agent_words_gets_487():
    """Early media: a CANCEL while the caller hears the no-agent words answers its INVITE 487."""
    w = make_call(1000, answer_mode="early_media")
    w.clock.advance(5)
    agent_fails(w, 0, 486)
    agent_fails(w, 1, 486)
    w.call.handle(Cancelled(w.a))
    assert w.a.sent == [183, 487]
    nothing_pending(w)


def test_answer_mode_agent_keeps_relaying_the_final_status_without_words_or_ringback():
    """The carrier's leg never carried our audio (answer mode "agent"): no ringback (the carrier rings its
    own on our 180), and the last agent's failure is relayed as before, at once."""
    w = make_call(1000, answer_mode="agent")
    assert w.media.ringback_log == [] and w.call.state is St.HUNTING
    agent_fails(w, 0, 486)
    agent_fails(w, 1, 486)
    assert w.a.sent == [486] and w.media.said == [] and w.media.ringback_log == []
    nothing_pending(w)
    assert w.records[0].end_reason == "no_agent"


def test_without_a_ringback_configured_the_hunt_is_as_before():
    """ringback "none": nothing starts (and the timeline says nothing of it); the no-agent words still play."""
    w = make_call(1000)
    w.media.ringback = None
    w.clock.advance(5)
    assert not w.media.ringing and not any("ringback" in what for what in timeline(w))
    agent_fails(w, 0, 486)
    agent_fails(w, 1, 486)
    assert w.media.said[-1].say is Say.NO_AGENT


def test_agent_hanging_up_after_the_answer_does_not_touch_the_stopped_ringback():
    """After the bridge the ringback stays stopped whatever happens (the agent's BYE ends the call)."""
    w = make_call(1000)
    w.clock.advance(5)
    answer_agent(w)
    w.b().ended = True
    w.call.handle(Bye(w.b()))
    assert [what for _, what in w.media.ringback_log] == ["start", "stop"]
    nothing_pending(w)
