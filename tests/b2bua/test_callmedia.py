"""RelayCallMedia on real UDP sockets (127.0.0.1), its timers and the player on a task.Clock.

A carrier phone (2500 Hz tone) and an agent phone (3000 Hz tone) talk through
the call's relay legs; what each one receives is decoded and searched for the
prompts by cross-correlation.
"""

from __future__ import annotations

import inspect
from decimal import Decimal

import numpy as np
import pytest
from twisted.internet import reactor

from b2bua.callmedia import CallMediaFactory, MediaRefused, PromptLibraries, RelayCallMedia, phrase_for
from b2bua.callports import Announcement, CallMedia, Say
from media.engine import LocalEngine
from media import phrases
from media.library import PromptLibrary
from media.rtp import build_rtp, build_telephone_event
from media.sdp import parse_sdp
from media.tones import beeps_pcm
from tests.support.relay import port_is_free
from tests.support.callfakes import FakeMedia
from tests.support.callmedia import Rig, band_level, find, pcm_of, relay_session

#: every test here runs with the call's media in process and behind a media worker (tests/b2bua/conftest.py)
BOTH_ENGINES = True


@pytest.fixture
def rig():
    r = Rig()
    yield r
    r.close()


def audio_section(body: bytes):
    sd = parse_sdp(body)
    return sd, sd.media[0]


def test_sdp_answer_and_offer_carry_our_address_ports_and_the_carriers_codecs(rig):
    """Our answer to the carrier: our address, leg a's port, A-law chosen over mu-law; our offer to the agent:
    leg b's port, PCMA then PCMU then telephone-event (what the carrier offered that we relay)."""
    answer = rig.media.answer_for_a(rig.carrier.sdp("0 8 101 18"))
    sd, m = audio_section(answer)
    assert sd.connection.address == "127.0.0.1" and m.port == relay_session(rig.media).leg_a.local_port
    assert m.formats == ("8", "101") and ("sendrecv", None) in m.attributes
    offer = rig.media.offer_for_b()
    sd_b, m_b = audio_section(offer)
    assert m_b.port == relay_session(rig.media).leg_b.local_port and m_b.formats == ("8", "0", "101")
    assert sd_b.origin.session_id != sd.origin.session_id
    # the same offer again (183 early media, then the 200) gets the same bytes
    assert rig.media.answer_for_a(rig.carrier.sdp("0 8 101 18")) == answer


def test_only_mu_law_from_the_carrier_is_offered_to_the_agent_mu_law_first_then_a_law(rig):
    """A carrier offering PCMU only: answered with PCMU, and the agent is offered PCMU first and PCMA after it
    (an agent taking only A-law still connects, transcoded), no telephone-event when the carrier has none."""
    _, m = audio_section(rig.media.answer_for_a(rig.carrier.sdp("0")))
    assert m.formats == ("0",)
    _, m_b = audio_section(rig.media.offer_for_b())
    assert m_b.formats == ("0", "8")


def test_audio_flows_both_ways_transcoded_between_alaw_and_mulaw(rig):
    """Carrier on PCMA, agent on PCMU: each phone hears the other's tone (correlation) in its own codec."""
    rig.bridge(agent_codec="PCMU")
    rig.step(25)
    heard_at_carrier, pkts_a = rig.carrier.heard()
    heard_at_agent, pkts_b = rig.agent.heard()
    assert {p.payload_type for p in pkts_a} == {8} and {p.payload_type for p in pkts_b} == {0}
    assert len(heard_at_agent) >= 20 * 160 and len(heard_at_carrier) >= 20 * 160
    agent_tone = np.frombuffer(b"".join(rig.agent.tone_pcm(k) for k in range(10)), "<i2").astype(float)
    carrier_tone = np.frombuffer(b"".join(rig.carrier.tone_pcm(k) for k in range(10)), "<i2").astype(float)
    assert find(heard_at_carrier, agent_tone)[1] > 0.98
    assert find(heard_at_agent, carrier_tone)[1] > 0.98
    assert {p.ssrc for p in pkts_a} == {relay_session(rig.media).a_out.ssrc}


def test_minutes_are_heard_by_the_carrier_and_not_by_the_agent(rig):
    """announce(MINUTES) with a tariff: the carrier hears tariff then minutes exactly (REPLACE), the agent hears
    only the carrier's tone; the Deferred fires True when the last frame has been played."""
    rig.bridge()
    rig.step(10)
    ann = Announcement(Say.MINUTES, minutes=21, per_minute=Decimal("1.99"), caller_class="landline")
    names = phrases.tariff(Decimal("1.99"), "landline", "de") + phrases.remaining_minutes(21, "de")
    assert phrase_for(ann, "de") == names
    pcm = pcm_of(rig.library, names)
    frames = len(pcm) // 160
    started = rig.clock.seconds()
    fired = []
    rig.media.announce(ann).addCallback(lambda ok: fired.append((ok, rig.clock.seconds())))
    rig.step(frames - 1)
    assert fired == []
    rig.step(12)
    assert fired and fired[0][0] is True
    assert abs(fired[0][1] - (started + frames * 0.02)) < 0.021
    at_carrier, _ = rig.carrier.heard()
    lag, score = find(at_carrier, pcm)
    assert score > 0.99 and abs(lag - 10 * 160) <= 160
    at_agent, _ = rig.agent.heard()
    assert find(at_agent, pcm)[1] < 0.3
    assert band_level(at_agent[-len(pcm):], 2500) > 0.8 * band_level(at_agent[:1600], 2500)


def announce_mixed(rig, announcement: Announcement, prompt) -> np.ndarray:
    """Bridge, let 10 frames pass, announce (mixed) and play it out: the carrier heard ``prompt`` from frame 10
    over the agent's tone, which stays as loud under it. Returns what the agent heard."""
    rig.bridge()
    rig.step(10)
    fired = []
    rig.media.announce(announcement).addCallback(fired.append)
    rig.step(len(prompt) // 160 + 10)
    assert fired == [True]
    at_carrier, _ = rig.carrier.heard()
    lag, score = find(at_carrier, prompt)
    assert score > 0.6 and abs(lag - 10 * 160) <= 2 * 160
    assert band_level(at_carrier[lag:lag + len(prompt)], 3000) > 0.7 * band_level(at_carrier[:1600], 3000)
    at_agent, _ = rig.agent.heard()
    return at_agent


def test_warning_is_mixed_words_to_the_carrier_and_shorter_words_to_the_agent_while_both_keep_talking(rig):
    """announce(WARNING, 30 s): the carrier hears "Ihr Guthaben reicht noch für dreißig Sekunden" over the
    agent's tone, the agent "Guthaben reicht noch dreißig Sekunden" over the carrier's tone (the spoken
    frames mixed into its stream, no beeps); both tones continue under it."""
    prompt = pcm_of(rig.library, phrases.warning("de", left_s=30))
    words = pcm_of(rig.library, phrases.agent_warning("de", left_s=30))
    assert len(words) < len(prompt)
    at_agent = announce_mixed(rig, Announcement(Say.WARNING, to_caller=True, to_agent=True, mixed=True, seconds=30),
                              prompt)
    lag_b, score_b = find(at_agent, words)
    assert score_b > 0.6 and abs(lag_b - 10 * 160) <= 2 * 160
    assert band_level(at_agent[lag_b:lag_b + len(words)], 2500) > 0.7 * band_level(at_agent[:1600], 2500)
    beeps = np.frombuffer(beeps_pcm(), "<i2").astype(float)
    assert find(at_agent, beeps)[1] < 0.3 and find(at_agent, prompt)[1] < score_b


def test_warning_with_agent_tone_is_mixed_prompt_to_the_carrier_beeps_to_the_agent(rig):
    """announce(WARNING, agent_tone): the carrier hears the warning prompt over the agent's tone, the agent
    hears the 1400 Hz beeps over the carrier's tone (agent_warning = "tone"); both tones continue under it."""
    prompt = pcm_of(rig.library, phrases.warning("de"))
    beeps = np.frombuffer(beeps_pcm(), "<i2").astype(float)
    at_agent = announce_mixed(rig, Announcement(Say.WARNING, to_caller=True, to_agent=True, mixed=True,
                                                agent_tone=True), prompt)
    lag_b, score_b = find(at_agent, beeps)
    assert score_b > 0.6 and abs(lag_b - 10 * 160) <= 2 * 160
    assert band_level(at_agent[lag_b:lag_b + 1600], 1400) > 5 * band_level(at_agent[:1600], 1400)
    assert band_level(at_agent[lag_b:lag_b + len(beeps)], 2500) > 0.7 * band_level(at_agent[:1600], 2500)
    assert find(at_agent, prompt)[1] < 0.3                                           # the agent gets no words


def test_before_the_agent_leg_exists_only_the_carrier_is_played_to(rig):
    """USED_UP to both before the agent answered: played on leg a only, and it fires True when done."""
    rig.media.answer_for_a(rig.carrier.sdp())
    rig.step(5)
    names = phrases.credit_used_up("de")
    fired = []
    rig.media.announce(Announcement(Say.USED_UP, to_caller=True, to_agent=True)).addCallback(fired.append)
    rig.step(len(rig.library.frames(names, "PCMA")) + 5)
    assert fired == [True]
    at_carrier, _ = rig.carrier.heard()
    assert find(at_carrier, pcm_of(rig.library, names))[1] > 0.99
    assert rig.agent.poll() == 0


def test_last_words_reach_each_leg_in_its_own_law_when_the_legs_differ(rig):
    """Carrier on PCMA, agent on PCMU (transcoded): USED_UP to both is sent as A-law (PT 8) to the carrier and
    as mu-law (PT 0) to the agent, and each hears the prompt itself (correlation), not a law misread."""
    rig.bridge(carrier_formats="8 101", agent_codec="PCMU")
    assert (rig.media.a.codec, rig.media.b.codec) == ("PCMA", "PCMU")
    rig.step(5)
    names = phrases.credit_used_up("de")
    fired = []
    rig.media.announce(Announcement(Say.USED_UP, to_caller=True, to_agent=True)).addCallback(fired.append)
    rig.step(len(rig.library.frames(names, "PCMA")) + 5, carrier=False, agent=False)
    assert fired == [True]
    prompt = pcm_of(rig.library, names)
    at_carrier, pkts_a = rig.carrier.heard()
    at_agent, pkts_b = rig.agent.heard()
    assert {p.payload_type for p in pkts_a} == {8} and {p.payload_type for p in pkts_b} == {0}
    assert find(at_carrier, prompt)[1] > 0.99 and find(at_agent, prompt)[1] > 0.99


def test_stop_interrupts_and_fires_false(rig):
    """stop() during an announcement: its Deferred fires False and the relayed audio is back at once."""
    rig.bridge()
    fired = []
    rig.media.announce(Announcement(Say.NO_CREDIT)).addCallback(fired.append)
    rig.step(10)
    rig.media.stop()
    assert fired == [False]
    assert not relay_session(rig.media).a_out.relay_muted
    assert rig.player.busy(relay_session(rig.media).a_out) is False


def test_a_bridged_calls_media_keeps_no_set_while_nothing_plays(rig):
    """What plays is tracked only while something does: a bridged call's media holds no set before an
    announcement nor once it was stopped (an empty one was 216 B of each held call, bench/memory.py --by-site)."""
    rig.bridge()
    assert [name for name, value in vars(rig.media).items() if isinstance(value, set)] == []
    fired = []
    rig.media.announce(Announcement(Say.NO_CREDIT)).addCallback(fired.append)
    rig.step(10)
    rig.media.stop()
    assert fired == [False]
    assert [name for name, value in vars(rig.media).items() if isinstance(value, set)] == []


def test_close_frees_the_ports_and_is_idempotent(rig):
    """close(): the four ports can be bound again, the relay has no session open; a second close does nothing."""
    rig.bridge()
    rig.step(3)
    ports = rig.media.ports
    assert not any(port_is_free(p) for p in ports)
    rig.media.close()
    rig.media.close()
    assert all(port_is_free(p) for p in ports)
    assert rig.relay.counters().sessions_open == 0
    assert rig.media.announce(Announcement(Say.MINUTES, minutes=3)).result is False


def test_no_common_codec_is_refused_with_488_and_garbage_with_400(rig):
    """G.729 only: MediaRefused 488; not SDP at all: 400; leg a stays unconfigured."""
    with pytest.raises(MediaRefused) as e:
        rig.media.answer_for_a(rig.carrier.sdp("18"))
    assert e.value.status == 488
    with pytest.raises(MediaRefused) as e:
        rig.media.answer_for_a(b"hello")
    assert e.value.status == 400
    with pytest.raises(MediaRefused) as e:
        rig.media.check_offer(rig.carrier.sdp("9 18"))
    assert (e.value.status, e.value.warn_code) == (488, 305)
    rig.media.check_offer(rig.carrier.sdp())
    assert rig.media.a is None


def test_an_agent_rung_before_the_carrier_is_answered_is_offered_the_carriers_law_first(rig):
    """answer_mode "agent": the carrier's offer (mu-law only, no events) is checked, not answered, when the
    agent is rung: our offer leads with PCMU and has no telephone-event, as it will after the answer."""
    rig.media.check_offer(rig.carrier.sdp("0"))
    _, m_b = audio_section(rig.media.offer_for_b())
    assert m_b.formats == ("0", "8") and rig.media.a is None


def test_ports_exhausted_is_a_503():
    """A relay with no free port pair: for_call raises MediaRefused 503 instead of crashing."""
    from media.player import Player
    from media.relay import Relay
    from tests.support.callmedia import LIBRARIES, free_range
    from twisted.internet.task import Clock
    lo, _ = free_range(4)
    clock = Clock()
    relay = Relay(reactor, "127.0.0.1", lo, lo + 3, silence_timeout_s=60, clock=clock)
    factory = CallMediaFactory(clock, LocalEngine(relay, Player(clock), LIBRARIES))
    first = factory.for_call("c1", "de")
    first.offer_for_b()                      # its agent is rung: both pairs of the range are taken
    try:
        with pytest.raises(MediaRefused) as e:
            factory.for_call("c2", "de")
        assert e.value.status == 503
    finally:
        first.close()
        factory.close()


def test_the_agent_leg_takes_its_port_pair_only_when_an_agent_is_rung():
    """A new call holds one port pair (the carrier's); the agent's is bound by offer_for_b, and with the
    range used up offer_for_b is a 503 (a caller who only hears a refusal never takes a second pair)."""
    from media.player import Player
    from media.relay import Relay
    from tests.support.callmedia import LIBRARIES, free_range
    from twisted.internet.task import Clock
    lo, _ = free_range(4)
    clock = Clock()
    relay = Relay(reactor, "127.0.0.1", lo, lo + 3, silence_timeout_s=60, clock=clock)
    factory = CallMediaFactory(clock, LocalEngine(relay, Player(clock), LIBRARIES))
    first = factory.for_call("c1", "de")
    second = factory.for_call("c2", "de")
    try:
        assert relay.ports.in_use == 2 and first.ports[2] == 0
        with pytest.raises(MediaRefused) as e:
            first.offer_for_b()
        assert e.value.status == 503
        second.close()
        assert b"m=audio " in first.offer_for_b() and first.ports[2] != 0 and relay.ports.in_use == 2
    finally:
        first.close()
        second.close()
        factory.close()
    assert relay.ports.in_use == 0


def test_refusals_hold_at_most_their_share_of_the_port_pairs():
    """With refusal_ports_percent = 50 of 4 pairs, two calls may speak a refusal, the third may not;
    a closed one gives its place back."""
    from media.player import Player
    from media.relay import Relay
    from tests.support.callmedia import LIBRARIES, free_range
    from twisted.internet.task import Clock
    lo, _ = free_range(8)
    clock = Clock()
    relay = Relay(reactor, "127.0.0.1", lo, lo + 7, silence_timeout_s=60, clock=clock)
    factory = CallMediaFactory(clock, LocalEngine(relay, Player(clock), LIBRARIES), refusal_ports_percent=lambda: 50)
    calls = [factory.for_call(f"c{i}", "de") for i in range(3)]
    try:
        assert [c.hold_for_refusal() for c in calls] == [True, True, False]
        assert calls[0].hold_for_refusal()          # asking again does not count twice
        calls[0].close()
        assert calls[2].hold_for_refusal()
    finally:
        for c in calls:
            c.close()
        factory.close()


def test_an_unusable_agent_answer_reports_dead_media_later(rig):
    """The agent answers with a codec we did not offer: on_dead("media_refused") on the next turn, not inside
    b_answered (the controller is mid-transition)."""
    rig.media.answer_for_a(rig.carrier.sdp())
    rig.media.offer_for_b()
    rig.media.b_answered(rig.agent.sdp("18"))
    assert rig.dead == [] and rig.media.b is None
    rig.clock.advance(0)
    assert rig.dead == ["media_refused"]


def test_silent_leg_reports_media_timeout_once():
    """The carrier stops sending: after the silence timeout on_dead("media_timeout"), once."""
    r = Rig(silence_timeout_s=5)
    try:
        r.bridge()
        r.step(5)
        r.step(50, carrier=False)
        assert r.dead == []
        r.step(300, carrier=False)
        assert r.dead == ["media_timeout"]
        r.step(100, carrier=False)
        assert r.dead == ["media_timeout"]
    finally:
        r.close()


def test_caller_key_presses_reach_on_dtmf_once_each(rig):
    """RFC 4733 from the carrier: 1, 2, 2 (each start plus three end packets) -> on_dtmf 1, 2, 2."""
    rig.bridge()
    port = relay_session(rig.media).leg_a.local_port
    seq = 5000
    for n, digit in enumerate((1, 2, 2)):
        ts = 100_000 + n * 8000
        packets = [build_telephone_event(digit, False, 10, 160), build_telephone_event(digit, False, 10, 320)]
        packets += [build_telephone_event(digit, True, 10, 480)] * 3
        for i, payload in enumerate(packets):
            rig.carrier.send(build_rtp(101, seq, ts, rig.carrier.ssrc, payload, marker=i == 0), port)
            seq += 1
    from tests.support.relay import pump
    pump(lambda: relay_session(rig.media).leg_a.rx_packets >= 15)
    assert rig.digits == ["1", "2", "2"]


def test_hold_and_resume_from_the_carrier_raise_our_version_only_on_change(rig):
    """re-INVITE sendonly: we answer recvonly with a higher o= version; the same offer again keeps the version;
    resume gets sendrecv and one more."""
    v0 = parse_sdp(rig.media.answer_for_a(rig.carrier.sdp())).origin.version
    hold = rig.media.reoffer_from_a(rig.carrier.sdp(direction="sendonly", version=2))
    sd, m = audio_section(hold)
    assert m.direction == "recvonly" and sd.origin.version == v0 + 1
    assert relay_session(rig.media).leg_a.may_send is False
    again = rig.media.reoffer_from_a(rig.carrier.sdp(direction="sendonly", version=2))
    assert parse_sdp(again).origin.version == v0 + 1
    resume = rig.media.reoffer_from_a(rig.carrier.sdp(direction="sendrecv", version=3))
    sd, m = audio_section(resume)
    assert m.direction == "sendrecv" and sd.origin.version == v0 + 2
    assert relay_session(rig.media).leg_a.may_send is True
    assert rig.media.a.direction == "sendrecv"


def test_carrier_on_hold_gets_no_audio_and_the_agent_keeps_getting_packets(rig):
    """Carrier holds (sendonly): we stop sending to it; the agent still receives (relayed tone, then fill)."""
    rig.bridge()
    rig.step(5)
    rig.media.reoffer_from_a(rig.carrier.sdp(direction="sendonly", version=2))
    before = rig.carrier.poll()
    rig.step(20)
    assert rig.carrier.poll() == before
    agent_before = rig.agent.poll()
    rig.step(10, carrier=False)
    assert rig.agent.poll() > agent_before


def test_late_offer_we_offer_and_the_ack_answer_configures_leg_a(rig):
    """An INVITE without SDP: our offer (PCMA, PCMU, telephone-event) in the 200, the carrier's answer in the ACK;
    then audio flows to the agent."""
    offer = rig.media.answer_for_a(None)
    _, m = audio_section(offer)
    assert m.formats == ("8", "0", "101") and rig.media.answer_for_a(None) == offer
    rig.media.a_acked(rig.carrier.sdp("0 101"))
    assert rig.media.a.codec == "PCMU"
    rig.carrier.codec = "PCMU"
    rig.media.offer_for_b()
    rig.media.b_answered(rig.agent.sdp("8 101"))
    rig.step(10)
    heard, pkts = rig.agent.heard()
    assert {p.payload_type for p in pkts} == {8}
    tone = np.frombuffer(b"".join(rig.carrier.tone_pcm(k) for k in range(5)), "<i2").astype(float)
    assert find(heard, tone)[1] > 0.98


def test_withheld_says_the_pin_prompt_when_the_profile_asks_for_a_pin():
    """WITHHELD: 'call with your number shown' by default, 'type your PIN' with withheld_pin."""
    assert phrase_for(Announcement(Say.WITHHELD), "en") == ["withheld", "call_with_number"]
    assert phrase_for(Announcement(Say.WITHHELD), "en", withheld_pin=True) == ["withheld", "enter_pin"]
    assert phrase_for(Announcement(Say.TOPPED_UP, minutes=12), "de") == phrases.topped_up("de", 12)
    assert phrase_for(Announcement(Say.TOPPED_UP), "de") == ["topped_up"]
    assert phrase_for(Announcement(Say.MINUTES, minutes=3), "en") == phrases.remaining_minutes(3, "en")
    assert phrase_for(Announcement(Say.MINUTES, minutes=123456), "de") == phrases.remaining_minutes(9999, "de")


def test_libraries_are_cached_per_language_and_folder(tmp_path):
    """The same (language, prompts_dir) gets the same library object; another folder another one."""
    libs = PromptLibraries()
    assert libs.get("de") is libs.get("de", "")
    assert libs.get("de", str(tmp_path)) is not libs.get("de")
    assert libs.get("en").lang == "en"
    assert libs.preload([("en", "")]) == len(PromptLibrary(lang="en").names())


def test_real_media_and_the_test_double_provide_the_callmedia_interface():
    """RelayCallMedia and tests' FakeMedia both have every CallMedia method with the same parameters."""
    for name, member in inspect.getmembers(CallMedia, inspect.isfunction):
        if name.startswith("_"):
            continue
        wanted = list(inspect.signature(member).parameters)
        for cls in (RelayCallMedia, FakeMedia):
            assert list(inspect.signature(getattr(cls, name)).parameters) == wanted, (cls, name)


def test_factory_from_the_example_config_preloads_every_profiles_prompts():
    """from_config: one Relay on config.media's address and range (leg A may latch within the trusted carriers),
    the prompts of each profile's language loaded before the first call; a call on a free range works."""
    import dataclasses

    from twisted.internet.task import Clock

    from b2bua.node.config import default_config_path, load_config
    from tests.support.callmedia import free_range

    config = load_config(default_config_path())
    lo, hi = free_range(60)
    config = dataclasses.replace(config, media=dataclasses.replace(config.media, rtp_port_min=lo, rtp_port_max=hi))
    clock = Clock()
    factory = CallMediaFactory.from_config(reactor, config, clock=clock)
    try:
        assert factory.engine.relay.address == config.media.address and factory.engine.relay.ports.port_min == lo
        assert factory.engine.relay.silence_timeout_s == config.media.silence_timeout_s
        assert factory.engine.relay.latch_networks == tuple(config.trusted_carriers)
        languages = {(p.language, p.prompts_dir) for p in config.profiles.values()}
        assert len(factory.engine.libraries) == len(languages)
        for lang, folder in languages:
            library = factory.engine.libraries.get(lang, folder)
            assert library.loads == len(library.names())        # all read at start, none mid-call
        media = factory.for_call("c-config", "de")
        assert lo <= media.ports[0] <= hi
        media.close()
    finally:
        factory.close()


def test_real_reactor_an_operators_recording_is_heard_and_done_fires_when_it_has_played(tmp_path):
    """On the real reactor (bounded to a few seconds): the operator's own 0.5 s recording for "no_credit"
    replaces the built-in one, the carrier hears it whole, and announce() fires about 0.5 s after it began."""
    import time
    import wave

    from media.player import Player
    from media.relay import Relay
    from media.tones import tone_pcm
    from tests.support.relay import pump
    from tests.support.callmedia import Phone, free_range
    from twisted.internet.task import LoopingCall

    recording = tone_pcm(700, 300, 0.3) + tone_pcm(1100, 200, 0.3)
    with wave.open(str(tmp_path / "no_credit.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000), w.writeframes(recording)
    libraries = PromptLibraries()
    lo, hi = free_range(60)
    relay = Relay(reactor, "127.0.0.1", lo, hi, silence_timeout_s=60)
    factory = CallMediaFactory(reactor, LocalEngine(relay, Player(reactor), libraries))
    carrier = Phone(2500, 0x1111)
    talking = LoopingCall(lambda: carrier.talk(relay_session(media).leg_a.local_port))
    try:
        media = factory.for_call("c-real", "de", str(tmp_path))
        media.answer_for_a(carrier.sdp("8 101"))
        talking.start(0.02)
        pump(lambda: carrier.poll() >= 5, 2.0)
        fired = []
        began = time.monotonic()
        media.announce(Announcement(Say.NO_CREDIT)).addCallback(lambda ok: fired.append((ok, time.monotonic())))
        pump(lambda: fired, 3.0)
        assert fired and fired[0][0] is True
        assert 0.45 <= fired[0][1] - began <= 0.8
        pump(lambda: False, 0.1)
        heard, _ = carrier.heard()
        expected = np.frombuffer(recording, "<i2").astype(float)
        assert find(heard, expected)[1] > 0.98
    finally:
        if talking.running:
            talking.stop()
        factory.close()
        carrier.close()


def test_agent_reinvite_hold_and_a_session_refresh_without_sdp(rig):
    """The agent holds (re-INVITE sendonly): answered recvonly on leg b's port and we stop sending to it; a
    session refresh from the carrier without SDP gets our offer with the codec in use, same o= version, and
    the ACK's answer keeps the audio flowing."""
    rig.bridge(agent_codec="PCMU")
    rig.step(3)
    hold = rig.media.reoffer_from_b(rig.agent.sdp("0 101", direction="sendonly", version=2))
    sd, m = audio_section(hold)
    assert m.port == relay_session(rig.media).leg_b.local_port and m.formats == ("0", "101") and m.direction == "recvonly"
    assert relay_session(rig.media).leg_b.may_send is False
    last_a = rig.media.answer_for_a(rig.carrier.sdp())
    refresh = rig.media.reoffer_from_a(None)
    sd_r, m_r = audio_section(refresh)
    assert m_r.formats[0] == "8" and sd_r.origin.version == parse_sdp(last_a).origin.version
    rig.media.a_acked(rig.carrier.sdp("8 101", version=2))
    assert rig.media.a.codec == "PCMA" and rig.dead == []
    rig.media.reoffer_from_b(rig.agent.sdp("0 101", version=3))
    before = rig.carrier.poll()
    rig.step(10)
    assert rig.agent.poll() > 0 and rig.carrier.poll() >= before + 9


def test_a_repeated_agent_answer_keeps_the_latched_address(rig):
    """The agent's 200 retransmitted: b_answered with the same SDP again does not reset latching."""
    rig.bridge()
    rig.step(3)
    latched = relay_session(rig.media).leg_b.latched
    assert latched is not None
    rig.media.b_answered(rig.agent.sdp("8 101"))
    assert relay_session(rig.media).leg_b.latched == latched


def test_a_failing_on_dead_handler_does_not_stop_the_relays_timers():
    """on_dead raising (a bug in the owner): logged; the relay's ticker keeps running for the other calls."""
    r = Rig(silence_timeout_s=5)
    try:
        r.media._on_dead = lambda reason: 1 / 0
        r.bridge()
        r.step(5)
        r.step(350, carrier=False, agent=False)
        assert r.media.dead_reason == "media_timeout"
        assert r.relay._ticker is not None and r.relay._ticker.running
        before = r.agent.poll()
        r.step(10, carrier=False, agent=False)
        assert r.agent.poll() > before                 # silence fill still flows
    finally:
        r.close()


def test_reloading_prompts_reads_the_operators_folder_again_all_or_nothing(tmp_path):
    """refresh: a changed recording in the operator's folder is used after reload; a broken one raises
    PromptError and the prompts in use stay."""
    import wave

    from media.library import PromptError
    from media.tones import tone_pcm

    def record(pcm):
        with wave.open(str(tmp_path / "no_credit.wav"), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000), w.writeframes(pcm)

    libs = PromptLibraries()
    record(tone_pcm(500, 200))
    libs.preload([("en", str(tmp_path))])
    old = libs.get("en", str(tmp_path))
    assert len(old.frames(["no_credit"], "PCMA")) == 10
    record(tone_pcm(500, 400))
    libs.refresh([("en", str(tmp_path)), ("de", "")])
    assert len(libs.get("en", str(tmp_path)).frames(["no_credit"], "PCMA")) == 20
    (tmp_path / "no_credit.wav").write_bytes(b"RIFF not really")
    kept = libs.get("en", str(tmp_path))
    with pytest.raises(PromptError):
        libs.refresh([("en", str(tmp_path))])
    assert libs.get("en", str(tmp_path)) is kept


def test_topped_up_is_mixed_to_the_caller_only(rig):
    """TOPPED_UP (mixed, caller only): the carrier hears it over the agent's tone; the agent hears no words and
    its stream carries the carrier's tone throughout."""
    prompt = pcm_of(rig.library, phrases.topped_up("de", 12))
    at_agent = announce_mixed(rig, Announcement(Say.TOPPED_UP, to_caller=True, mixed=True, minutes=12), prompt)
    assert find(at_agent, prompt)[1] < 0.3
    assert relay_session(rig.media).b_out.packets_own == 0
