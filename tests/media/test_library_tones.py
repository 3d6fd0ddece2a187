"""Tones and silence frames: the agent's 1400 Hz warning beeps, silence per codec, comfort noise."""

import random

import numpy as np
import pytest

from media import g711, tones


def test_warning_tone_is_three_1400hz_beeps():
    """The warning is 3 beeps of 200 ms at 1400 Hz with 200 ms gaps: 1 s, 50 frames per codec, peak at 1400 Hz."""
    frames = tones.warning_tone()
    assert len(frames["PCMA"]) == len(frames["PCMU"]) == 50
    pcm = np.frombuffer(g711.decode_ulaw(b"".join(frames["PCMU"])), dtype="<i2").astype(float)
    envelope = np.abs(pcm).reshape(-1, 160).max(axis=1)        # one level per 20 ms
    on = envelope > 2000
    assert "".join("1" if x else "0" for x in on) == ("1" * 10 + "0" * 10) * 2 + "1" * 10
    beep = pcm[:1600]
    spectrum = np.abs(np.fft.rfft(beep * np.hanning(len(beep))))
    assert abs(np.fft.rfftfreq(len(beep), 1 / 8000)[np.argmax(spectrum)] - 1400) < 10
    # about -13 dBm0: peak near 22 % of full scale, no clipping
    assert 0.18 < np.abs(pcm).max() / 32768 < 0.26


def test_tone_edges_are_ramped():
    """Beeps start and end softly (5 ms raised cosine) so they do not click."""
    pcm = np.frombuffer(tones.tone_pcm(1400, 200), dtype="<i2")
    assert abs(int(pcm[0])) < 50 and abs(int(pcm[-1])) < 400 and np.abs(pcm[80:-80]).max() > 7000


def test_silence_frames_per_codec():
    """Silence is 0xD5 in A-law and 0xFF in mu-law, 160 bytes a frame, rounded up to whole frames."""
    assert tones.silence_frame("PCMA") == b"\xd5" * 160
    assert tones.silence_frame("PCMU") == b"\xff" * 160
    assert len(tones.silence_frames("PCMU", 50)) == 3
    with pytest.raises(ValueError):
        tones.silence_frame("G722")


def test_comfort_noise_is_faint_and_reproducible():
    """Comfort noise at -60 dBov is faint but not digital silence, and the same for the same seed."""
    a = tones.comfort_noise_frames("PCMA", 200, rng=random.Random(7))
    b = tones.comfort_noise_frames("PCMA", 200, rng=random.Random(7))
    assert a == b and len(a) == 10 and all(len(f) == 160 for f in a)
    pcm = np.frombuffer(g711.decode_alaw(b"".join(a)), dtype="<i2").astype(float)
    rms_dbov = 20 * np.log10(np.sqrt((pcm ** 2).mean()) / 32767)
    assert -66 < rms_dbov < -54 and len(set(b"".join(a))) > 2
