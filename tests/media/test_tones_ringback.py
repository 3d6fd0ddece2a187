"""The ringback tones with plain values: each country's cadence frame by frame, its frequencies (zero
crossings, Goertzel), its level in dBm0, and the default by region."""

from __future__ import annotations

import math

import numpy as np
import pytest

from media import g711, tones

FULL_SCALE_SINE_RMS = 32767 / math.sqrt(2)      # +3.14 dBm0 in G.711


def decoded(name: str, codec: str = "PCMA") -> np.ndarray:
    """One period of the ringback tone ``name`` as the caller's phone decodes it."""
    return np.frombuffer(g711.decode(b"".join(tones.ringback_tone(name)[codec]), codec), dtype="<i2").astype(float)


def on_off(pcm: np.ndarray) -> str:
    """'1' for each 20 ms frame with tone in it (above -40 dBm0), '0' for silence."""
    rms = np.sqrt((pcm.reshape(-1, 160) ** 2).mean(axis=1))
    return "".join("1" if r > FULL_SCALE_SINE_RMS * 10 ** ((-40 - 3.14) / 20) else "0" for r in rms)


def goertzel_amplitude(x: np.ndarray, hz: float) -> float:
    """The amplitude (peak) of the sine at ``hz`` in ``x`` (Goertzel over a whole number of its cycles)."""
    n = len(x)
    k = 2 * math.cos(2 * math.pi * hz / 8000)
    s1 = s2 = 0.0
    for v in x:
        s1, s2 = v + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / n


def dbm0(amplitude: float) -> float:
    return 20 * math.log10(amplitude / 32767) + tones.DBM0_FULL_SCALE_SINE


@pytest.mark.parametrize("name, pattern", [
    ("de", "1" * 50 + "0" * 200),
    ("us", "1" * 100 + "0" * 200),
    ("uk", "1" * 20 + "0" * 10 + "1" * 20 + "0" * 100),
])
@pytest.mark.parametrize("codec", ["PCMA", "PCMU"])
def test_one_period_has_the_countrys_cadence(name, pattern, codec):
    """de 1 s on 4 s off; us 2 s on 4 s off; uk 0.4 on 0.2 off 0.4 on 2.0 off: one period, frame by frame, in
    both codecs (the player loops it, so a period ends in silence and the loop does not click)."""
    frames = tones.ringback_tone(name)[codec]
    assert all(len(f) == 160 for f in frames)
    assert on_off(decoded(name, codec)) == pattern


def test_german_ringback_is_425_hz_by_its_zero_crossings():
    """One second of the German tone crosses zero 850 times (425 Hz), give or take the ramps' edges."""
    burst = decoded("de")[:8000]
    crossings = np.count_nonzero(np.diff(np.signbit(burst[40:-40])))
    assert abs(crossings - 2 * 425 * (8000 - 80) / 8000) <= 3


@pytest.mark.parametrize("name, freqs", [("de", (425,)), ("us", (440, 480)), ("uk", (400, 450))])
def test_each_frequency_is_at_minus_19_dbm0_and_nothing_else_is(name, freqs):
    """Goertzel over the first burst: each of the country's frequencies at -19 dBm0 (+/- 0.5 dB after
    G.711), and nothing at a frequency between or beside them."""
    period = decoded(name)
    burst = period[:160 * 20][80:-80]           # 400 ms inside the first burst, past the ramps
    burst = burst[:len(burst) // 40 * 40]       # whole cycles of 200 Hz: every tone here fits
    for hz in freqs:
        assert abs(dbm0(goertzel_amplitude(burst, hz)) - tones.RINGBACK_LEVEL_DBM0) < 0.5, hz
    for hz in (300, 350, 520, 1000):
        assert dbm0(goertzel_amplitude(burst, hz) + 1e-9) < -45, hz


def test_level_of_the_single_tone_by_rms():
    """The German burst's RMS is -19 dBm0: a sine's RMS against the full-scale sine's (+3.14 dBm0)."""
    burst = decoded("de")[400:7600]
    level = 20 * math.log10(np.sqrt((burst ** 2).mean()) / FULL_SCALE_SINE_RMS) + tones.DBM0_FULL_SCALE_SINE
    assert abs(level + 19) < 0.3


def test_amplitude_for_dbm0_with_plain_values():
    """+3.14 dBm0 is full scale; -19 dBm0 is 7.8 % of it."""
    assert tones.amplitude_for_dbm0(3.14) == pytest.approx(1.0)
    assert tones.amplitude_for_dbm0(-19) == pytest.approx(0.0781, abs=0.0005)


def test_default_ringback_follows_the_region():
    """DE/AT/CH hear the German tone, US/CA the American, GB the British; any other region the European one."""
    assert [tones.ringback_for_region(r) for r in ("DE", "AT", "CH", "US", "CA", "GB", "gb", "FR", "JP")] == [
        "de", "de", "de", "us", "us", "uk", "uk", "de", "de"]


def test_unknown_tone_and_bad_cadence_are_refused():
    """A name with no cadence, and on/off times that are not whole 20 ms frames, are errors that say so."""
    with pytest.raises(ValueError, match="no ringback tone 'fr'"):
        tones.ringback_tone("fr")
    with pytest.raises(ValueError, match="multiples of 20 ms"):
        tones.cadence_pcm(tones.Cadence((425,), (1000, 4010)))
    with pytest.raises(ValueError):
        tones.chord_pcm((440, 480), 100, 0.6)       # two sines of 0.6 would clip
