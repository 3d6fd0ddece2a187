"""Tones and silence as 20 ms G.711 frames.

The agent's warning tone is three beeps of 1400 Hz, 200 ms on and 200 ms off,
at about -13 dBm0.  Why 1400 Hz and not 425 Hz: 425 Hz is the European call
progress frequency (dial, busy, congestion and call-waiting tones are all
425 Hz), so an agent hearing 425 Hz beeps may take them for the line dropping
or a waiting call; 1400 Hz is the frequency ITU-T E.180 gives for the
intrusion/recording warning tone, a signal that means "someone is telling you
something about this call", it sits well inside the 300-3400 Hz band of G.711,
and it is easy to hear over speech.
"""

from __future__ import annotations

import math
import random
import sys
from array import array

from . import g711
from .library import CODECS, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE

__all__ = ["WARNING_TONE_HZ", "tone_pcm", "beeps_pcm", "warning_tone", "silence_frames",
           "silence_frame", "comfort_noise_frames", "frames_from_pcm"]

WARNING_TONE_HZ = 1400
WARNING_BEEPS = 3
WARNING_ON_MS = 200
WARNING_OFF_MS = 200
WARNING_AMPLITUDE = 0.22          # of full scale: about -13 dBm0 (G.711 full sine is +3.14 dBm0)
_RAMP_MS = 5                      # raised-cosine edges, so the beeps do not click


def tone_pcm(freq_hz: float, duration_ms: int, amplitude: float = WARNING_AMPLITUDE) -> bytes:
    """A sine of ``freq_hz`` as 8 kHz 16-bit PCM, with short raised-cosine edges."""
    if not 0 < freq_hz < SAMPLE_RATE / 2 or not 0 <= amplitude <= 1 or duration_ms < 0:
        raise ValueError("tone must be below 4 kHz, amplitude 0..1, duration >= 0")
    n = SAMPLE_RATE * duration_ms // 1000
    ramp = min(SAMPLE_RATE * _RAMP_MS // 1000, n // 2)
    peak = amplitude * 32767
    samples = array("h", bytes(2 * n))
    for i in range(n):
        edge = min(i, n - 1 - i)
        gain = 0.5 - 0.5 * math.cos(math.pi * edge / ramp) if edge < ramp else 1.0
        samples[i] = int(round(peak * gain * math.sin(2 * math.pi * freq_hz * i / SAMPLE_RATE)))
    if sys.byteorder != "little":
        samples.byteswap()
    return samples.tobytes()


def beeps_pcm(freq_hz: float = WARNING_TONE_HZ, beeps: int = WARNING_BEEPS, on_ms: int = WARNING_ON_MS,
              off_ms: int = WARNING_OFF_MS, amplitude: float = WARNING_AMPLITUDE) -> bytes:
    """``beeps`` beeps of ``on_ms`` with ``off_ms`` of silence between them (none after the last)."""
    beep = tone_pcm(freq_hz, on_ms, amplitude)
    gap = bytes(2 * (SAMPLE_RATE * off_ms // 1000))
    return gap.join([beep] * beeps)


def frames_from_pcm(pcm: bytes, codec: str) -> list[bytes]:
    """8 kHz 16-bit PCM as 160-byte frames in ``codec``, the last padded with silence."""
    pad = -len(pcm) % (FRAME_SAMPLES * 2)
    coded = g711.encode(pcm + bytes(pad), codec)
    return [coded[i:i + FRAME_SAMPLES] for i in range(0, len(coded), FRAME_SAMPLES)]


def warning_tone() -> dict[str, list[bytes]]:
    """The agent's warning (three 1400 Hz beeps) as frames in both codecs, as the player takes them."""
    pcm = beeps_pcm()
    return {codec: frames_from_pcm(pcm, codec) for codec in CODECS}


def silence_frame(codec: str) -> bytes:
    """One 20 ms frame of digital silence (A-law 0xD5, mu-law 0xFF)."""
    try:
        return bytes([g711.SILENCE[codec]]) * FRAME_SAMPLES
    except KeyError:
        raise ValueError(f"unknown G.711 codec {codec!r}") from None


def silence_frames(codec: str, duration_ms: int) -> list[bytes]:
    """Silence for ``duration_ms`` (rounded up to whole 20 ms frames)."""
    return [silence_frame(codec)] * -(-duration_ms // FRAME_MS)


def comfort_noise_frames(codec: str, duration_ms: int, level_dbov: float = -60.0,
                         rng: random.Random | None = None) -> list[bytes]:
    """Faint white noise (``level_dbov`` RMS below full scale) for ``duration_ms``.

    Played instead of digital silence where a line that goes dead quiet would
    make the listener think the call dropped.  ``rng`` makes it reproducible.
    """
    rng = rng or random.Random(0)
    rms = 32767 * 10 ** (level_dbov / 20)
    n = FRAME_SAMPLES * -(-duration_ms // FRAME_MS)
    samples = array("h", (max(-32768, min(32767, int(rng.gauss(0, rms)))) for _ in range(n)))
    if sys.byteorder != "little":
        samples.byteswap()
    return frames_from_pcm(samples.tobytes(), codec)
