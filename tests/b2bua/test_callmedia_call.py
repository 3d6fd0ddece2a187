"""The call controller with the real media (relay sockets on 127.0.0.1), fake SIP legs and in-memory billing.

One ``task.Clock`` drives the controller, billing, the relay's timers and the
player; the phones' packets cross real sockets.  The tests pin that the
controller's timeline follows the audio: the agent is rung when the minutes
have been heard in full, the warning and the final words reach both phones,
and the BYEs go out when the last word has been played.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from b2bua.call import Call
from b2bua.callevents import Answered, Bye, MediaDead, Ringing
from b2bua.callstate import St
from b2bua.identity import CallerIdentity
from b2bua.routing import Router
from billing.profile import CallerClass, Increment
from billing.session import CallBilling
from media import phrases
from tests.billing.test_session_harness import MemorySessionStore
from tests.support.callfakes import CALLER, FakeA, FakeB, Profile, billing_profile
from tests.support.callmedia import Rig, band_level, find, pcm_of, relay_session

#: every test here runs with the call's media in process and behind a media worker (tests/b2bua/conftest.py)
BOTH_ENGINES = True


class Scene:
    """A call on a Rig: the controller, its legs, the records; ``run`` steps until a condition holds."""

    def __init__(self, balance_cents: int, profile: Profile, ringback: str = "none"):
        self.rig = rig = Rig()
        rig.media.close()                          # the rig's own media: this call makes its own
        self.store = MemorySessionStore()
        self.store.set_balance(profile.name, CALLER, balance_cents)
        self.billing = CallBilling(self.store, rig.clock, node_id="n1", lease_s=60)
        self.a = FakeA()
        self.a.offer = rig.carrier.sdp("8 0 101")
        self.legs: list[FakeB] = []
        self.offers: list[bytes] = []
        self.records: list = []
        self.rung_at: list[tuple[float, int]] = []        # (clock, carrier packets heard) when the agent rang
        self.byes_at: dict[str, float] = {}
        holder: dict = {}
        rig.media = rig.factory.for_call("call-2", "de", on_dead=lambda reason: holder["call"].handle(MediaDead(reason)),
                                         on_dtmf=rig.digits.append, ringback=ringback)
        route = Router([profile], "DE").route("+493012345678")
        self.call = Call(call_id="call-2", reactor=rig.clock, a=self.a, route=route,
                         identity=CallerIdentity(CALLER, "from", False, CallerClass.LANDLINE),
                         dialer=self._dial, media=rig.media, billing=self.billing,
                         record=self.records.append, max_duration_s=3600)
        holder["call"] = self.call

    def _dial(self, agent, identity, offer, call):
        leg = FakeB(agent)
        self.legs.append(leg)
        self.offers.append(offer)
        self.rung_at.append((self.rig.clock.seconds(), self.rig.carrier.poll()))
        return leg

    def answer_agent(self):
        leg = self.legs[-1]
        self.call.handle(Ringing(leg, 180))
        leg.final_status = 200
        self.rig.agent.codec = "PCMA"
        self.call.handle(Answered(leg, self.rig.agent.sdp("8 101")))

    def run(self, until, limit_frames: int):
        """Step 20 ms at a time (both phones talking while they can) until ``until()``; bounded."""
        for _ in range(limit_frames):
            if until():
                return
            self.rig.step(1, carrier=not self.a.ended, agent=bool(self.legs) and not self.legs[-1].ended,
                          drain=False)
            for who, leg in (("a", self.a), ("b", self.legs[-1] if self.legs else None)):
                if leg is not None and "BYE" in leg.sent and who not in self.byes_at:
                    self.byes_at[who] = self.rig.clock.seconds()
        assert until(), "the condition did not come true in time"
        self.rig.step(0)

    def close(self):
        self.rig.close()


@pytest.fixture
def scenes():
    made = []
    yield lambda *a, **kw: made.append(Scene(*a, **kw)) or made[-1]
    for scene in made:
        scene.close()


def test_the_agent_is_rung_when_the_minutes_have_been_heard_in_full(scenes):
    """Answer, announce 8 minutes on real sockets: the agent rings exactly when the prompt's last frame is
    played, and by then the carrier has heard the whole prompt; bridged audio flows; BYE frees the ports."""
    s = scenes(1000, Profile("demo", billing_profile()))
    s.call.start()
    assert s.a.sent == [200] and s.legs == []
    names = phrases.remaining_minutes(8, "de")
    prompt = pcm_of(s.rig.library, names)
    answered_s = s.rig.clock.seconds()
    s.run(lambda: s.legs, 400)
    rung_s, _ = s.rung_at[0]
    assert abs(rung_s - answered_s - len(prompt) / 8000) < 0.021
    assert s.call.times.announcement_end_ms - s.call.times.answer_ms == pytest.approx(len(prompt) / 8, abs=20)
    heard, _ = s.rig.carrier.heard()
    lag, score = find(heard, prompt)
    assert score > 0.99 and lag + len(prompt) <= len(heard)
    # the offer to the agent is ours: leg b's port, the carrier's codecs
    assert f"m=audio {relay_session(s.rig.media).leg_b.local_port} RTP/AVP 8 0 101".encode() in s.offers[0]
    s.answer_agent()
    assert s.call.state is St.BRIDGED
    s.rig.step(25)
    at_agent, _ = s.rig.agent.heard()
    tone = np.frombuffer(b"".join(s.rig.carrier.tone_pcm(k) for k in range(10)), "<i2").astype(float)
    assert find(at_agent, tone)[1] > 0.98
    ports = s.rig.media.ports
    s.a.ended = True
    s.call.handle(Bye(s.a))
    assert s.legs[-1].sent == ["BYE"] and s.call.state is St.DONE
    assert s.rig.media.closed and s.rig.relay.counters().sessions_open == 0
    from tests.support.relay import port_is_free
    assert all(port_is_free(p) for p in ports)
    assert s.records[0].end_reason == "caller_hangup"


def test_warning_to_both_then_the_last_words_then_bye_when_the_credit_is_spent(scenes):
    """20 cents at 1.20/min, 1/1 increments, warning 4 s before: the carrier hears "noch für vier Sekunden"
    (not "eine Minute"), the agent its short words with the same time, each mixed over the other's tone;
    then the final words replacing it; both BYEs go out when those words end; the record's charge and the
    balance add up to the 20 cents."""
    profile = Profile("demo", billing_profile(landline_per_minute=Decimal("1.20"), increment=Increment(1, 1),
                                              warn_before_s=4))
    s = scenes(20, profile)
    s.call.start()
    s.run(lambda: s.legs, 400)
    s.answer_agent()
    bridged_s = s.rig.clock.seconds()
    s.run(lambda: "BYE" in s.a.sent, 900)
    assert s.legs[-1].sent == ["BYE"]
    final = pcm_of(s.rig.library, phrases.credit_used_up("de"))
    warning = pcm_of(s.rig.library, phrases.warning("de", left_s=4))
    to_agent = pcm_of(s.rig.library, phrases.agent_warning("de", left_s=4))
    at_carrier, _ = s.rig.carrier.heard()
    at_agent, _ = s.rig.agent.heard()
    # the final words, whole, to both; the BYEs right when they end
    lag_a, score_a = find(at_carrier, final)
    lag_b, score_b = find(at_agent, final)
    assert score_a > 0.99 and score_b > 0.99
    assert len(at_carrier) - (lag_a + len(final)) < 20 * 160
    exhausted_ms = next(ms for ms, what in s.call.events if what == "credit exhausted")
    assert abs(s.byes_at["a"] * 1000 - exhausted_ms - len(final) / 8) <= 20 + 1
    # the warning: the caller's words at the carrier, the agent's at the agent, mixed over the other's tone
    lag_w, score_w = find(at_carrier, warning)
    assert score_w > 0.6 and lag_w < lag_a
    assert find(at_carrier, pcm_of(s.rig.library, phrases.warning("de", left_s=60)))[1] < score_w - 0.2
    assert band_level(at_carrier[lag_w:lag_w + len(warning)], 3000) > 0.5 * band_level(at_carrier[lag_w - 3200:lag_w], 3000)
    lag_t, score_t = find(at_agent, to_agent)
    assert score_t > 0.6 and lag_t < lag_b
    under = band_level(at_agent[lag_t:lag_t + len(to_agent)], 2500)
    assert under > 0.5 * band_level(at_agent[lag_t - 3200:lag_t], 2500)
    warned_ms = next(ms for ms, what in s.call.events if what.startswith("warning"))
    assert 0 < exhausted_ms - warned_ms <= 5000 and warned_ms > bridged_s * 1000
    # the money
    rec = s.records[0]
    assert rec.end_reason == "credit_exhausted" and s.call.state is St.DONE
    assert rec.charge_cents + s.store.balances[("demo", CALLER)] == 20 and rec.charge_cents > 0
    assert s.rig.relay.counters().sessions_open == 0


@pytest.mark.parametrize("balance,identity,names", [
    (50, CallerIdentity(CALLER, "from", False, CallerClass.LANDLINE), phrases.no_credit("de")),
    (1000, CallerIdentity(None, "none", True, None), phrases.withheld("de", False)),
], ids=["no_credit", "withheld"])
def test_refused_callers_hear_why_then_bye_and_no_agent_is_rung(scenes, balance, identity, names):
    """No credit / withheld number: the carrier is answered, hears the whole message, gets BYE when it ends;
    no agent leg is ever made; the ports are freed."""
    s = scenes(balance, Profile("demo", billing_profile()))
    s.call.identity = identity
    answered_s = s.rig.clock.seconds()
    s.call.start()
    assert s.a.sent == [200]
    s.run(lambda: "BYE" in s.a.sent, 600)
    assert s.legs == [] and s.call.state is St.DONE and s.rig.media.closed
    prompt = pcm_of(s.rig.library, names)
    heard, _ = s.rig.carrier.heard()
    lag, score = find(heard, prompt)
    assert score > 0.99 and len(heard) - (lag + len(prompt)) < 3 * 160      # nothing much after it
    assert abs(s.byes_at["a"] - answered_s - len(prompt) / 8000) <= 0.021  # BYE when the words end
