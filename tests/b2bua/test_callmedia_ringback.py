"""The ringback on real relay sockets: the controller, the relay and the player on one task.Clock, fake SIP legs
(the Scene of ``test_callmedia_call``).  Pinned: the caller's phone receives the German ringback, frame by frame
in its cadence and at its level, from the end of the minutes until the agent answers, and none of it after
(the bridged audio is the agent's alone); a hunt that finds no agent ends the ringback, and the caller hears
the no-agent words in full before the BYE.
"""

from __future__ import annotations

import math

import numpy as np

from b2bua.callevents import Failed
from b2bua.callstate import St
from media import phrases
from tests.b2bua.test_callmedia_call import scenes  # noqa: F401  (the fixture)
from tests.support.callfakes import Profile, billing_profile
from tests.support.callmedia import band_level, find, pcm_of

#: every test here runs with the call's media in process and behind a media worker (tests/b2bua/conftest.py)
BOTH_ENGINES = True

#: the RMS of a -40 dBm0 sine in 16-bit PCM: above it a 20 ms frame has tone in it
ON_RMS = 32767 / math.sqrt(2) * 10 ** ((-40 - 3.14) / 20)


def on_off(pcm: np.ndarray) -> str:
    frames = pcm[:len(pcm) // 160 * 160].reshape(-1, 160)
    return "".join("1" if r > ON_RMS else "0" for r in np.sqrt((frames ** 2).mean(axis=1)))


def test_the_caller_hears_the_ringback_in_its_cadence_until_the_agent_answers(scenes):  # noqa: F811
    """After the minutes: 1 s of 425 Hz at -19 dBm0, 4 s of silence, 425 Hz again (the loop, no gap); at the
    answer it stops at once and the carrier hears the agent's 3000 Hz tone with no 425 Hz under it."""
    s = scenes(1000, Profile("demo", billing_profile()), ringback="de")
    s.call.start()
    s.run(lambda: s.legs, 400)
    s.rig.step(320, agent=False)                     # 6.4 s of ringing
    s.answer_agent()
    assert s.call.state is St.BRIDGED
    s.rig.step(50)
    heard, _ = s.rig.carrier.heard()
    prompt = pcm_of(s.rig.library, phrases.remaining_minutes(8, "de"))
    lag, score = find(heard, prompt)
    assert score > 0.99
    after_prompt = heard[lag + len(prompt):]
    pattern = on_off(after_prompt)
    first = pattern.index("1")
    assert first <= 2                                # the ringback follows the minutes at once
    assert pattern[first:first + 300] == "1" * 50 + "0" * 200 + "1" * 50
    burst = after_prompt[first * 160:(first + 50) * 160]
    level = 20 * math.log10(np.sqrt((burst[80:-80] ** 2).mean()) / (32767 / math.sqrt(2))) + 3.14
    assert abs(level + 19) < 0.5
    assert band_level(burst, 425) > 20 * band_level(burst, 1000)
    # from the answer on: the agent's tone only
    bridged = after_prompt[(first + 320 + 2) * 160:]
    assert len(bridged) >= 40 * 160
    assert band_level(bridged, 3000) > 100 * band_level(bridged, 425)
    assert "ringback (de) until the agent answered after 6.4 s" in [what for _, what in s.call.events]


def test_no_agent_the_ringback_ends_and_the_words_are_heard_whole_before_the_bye(scenes):  # noqa: F811
    """Both agents busy after a second of ringback each: the ringback stops, the caller hears the no-agent
    words (whole, nothing under them), and the BYE goes out when they end; nothing charged."""
    s = scenes(1000, Profile("demo", billing_profile()), ringback="de")
    s.call.start()
    s.run(lambda: s.legs, 400)
    s.rig.step(30, agent=False)
    for _ in range(2):
        leg = s.legs[-1]
        leg.ended = True
        leg.final_status = 486
        s.call.handle(Failed(leg, 486))
    assert s.call.state is St.NO_AGENT
    s.run(lambda: "BYE" in s.a.sent, 400)
    heard, _ = s.rig.carrier.heard()
    words = pcm_of(s.rig.library, phrases.no_agent("de"))
    lag, score = find(heard, words)
    assert score > 0.99
    told_ms = next(ms for ms, what in s.call.events if what.startswith("no agent took the call"))
    assert abs(s.byes_at["a"] * 1000 - told_ms - len(words) / 8) <= 21
    assert band_level(heard[lag:lag + len(words)], 425) < 0.05 * band_level(heard[lag - 30 * 160:lag], 425)
    assert s.records[0].end_reason == "no_agent" and s.records[0].charge_cents == 0


def test_ringbacks_by_setting_and_a_bad_music_file_on_reload_keeps_the_old(tmp_path):
    """Ringbacks: a tone by name, nothing for "none", a music file by its name (loaded once); a refresh whose
    file has turned bad raises PromptError naming it and the music in use stays."""
    import pytest

    from b2bua.callmedia import Ringbacks
    from media.library import PromptError
    from media.tones import ringback_tone
    from tests.media.test_library import sine, write_wav
    ringbacks = Ringbacks()
    assert ringbacks.get("us") == ("us", ringback_tone("us")) and ringbacks.get("none") is None
    music = tmp_path / "hold.wav"
    write_wav(music, 8000, 1, [sine(440, 8000, 0.5)])
    assert ringbacks.preload([str(music)]) == 1
    name, frames = ringbacks.get(str(music))
    assert name == "hold.wav" and len(frames["PCMA"]) == 25
    music.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    with pytest.raises(PromptError, match="hold.wav"):
        ringbacks.refresh([str(music)])
    assert ringbacks.get(str(music)) == (name, frames)
