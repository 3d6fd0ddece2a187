"""Tones and silence as 20 ms G.711 frames.

The agent's warning tone is three beeps of 1400 Hz, 200 ms on and 200 ms off,
at about -13 dBm0.  Why 1400 Hz and not 425 Hz: 425 Hz is the European call
progress frequency (dial, busy, congestion and call-waiting tones are all
425 Hz), so an agent hearing 425 Hz beeps may take them for the line dropping
or a waiting call; 1400 Hz is the frequency ITU-T E.180 gives for the
intrusion/recording warning tone, a signal that means "someone is telling you
something about this call", it sits well inside the 300-3400 Hz band of G.711,
and it is easy to hear over speech.

The ringback tone the caller hears while agents ring (``ringback_tone``) is
played in the cadence of the caller's country, each frequency at -19 dBm0:

==== ============= ======================================== ======================================
name frequencies   cadence (on/off, s)                      source
==== ============= ======================================== ======================================
de   425 Hz        1.0 on, 4.0 off                          ITU-T E.180 Supplement 2 (Germany,
                                                            ringing tone I); ETSI TR 101 041-2
us   440 + 480 Hz  2.0 on, 4.0 off                          E.180 Suppl. 2 (United States); the
                                                            North American Precise Tone Plan
uk   400 + 450 Hz  0.4 on, 0.2 off, 0.4 on, 2.0 off         E.180 Suppl. 2 (United Kingdom)
==== ============= ======================================== ======================================

E.180 Supplement 2 lists the tones each national network uses (ETSI TR 101
041-2 collects the same for Europe); where a country lists two ringing tones,
the first is taken.  The level is the Precise Tone Plan's for audible
ringing, -19 dBm0 per frequency, used for all three (E.180 leaves the level
to each network).  In G.711 a full-scale sine is +3.14 dBm0 (G.711's
tables), so -19 dBm0 is a sine of ``10 ** ((-19 - 3.14) / 20)``, 7.8 % of full
scale.  One period of the cadence is made once (whole 20 ms frames: every on
and off time is a multiple of 20 ms) and the player loops it.
"""

from __future__ import annotations

import math
import random
import sys
from array import array
from dataclasses import dataclass
from functools import lru_cache

from . import g711
from .library import CODECS, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE

__all__ = ["WARNING_TONE_HZ", "tone_pcm", "chord_pcm", "beeps_pcm", "warning_tone", "silence_frames",
           "silence_frame", "comfort_noise_frames", "frames_from_pcm", "Cadence", "RINGBACK_CADENCES",
           "RINGBACK_LEVEL_DBM0", "DBM0_FULL_SCALE_SINE", "amplitude_for_dbm0", "cadence_pcm", "ringback_tone",
           "ringback_for_region"]

WARNING_TONE_HZ = 1400
WARNING_BEEPS = 3
WARNING_ON_MS = 200
WARNING_OFF_MS = 200
WARNING_AMPLITUDE = 0.22          # of full scale: about -13 dBm0 (G.711 full sine is +3.14 dBm0)
_RAMP_MS = 5                      # raised-cosine edges, so the beeps do not click


def tone_pcm(freq_hz: float, duration_ms: int, amplitude: float = WARNING_AMPLITUDE) -> bytes:
    """A sine of ``freq_hz`` as 8 kHz 16-bit PCM, with short raised-cosine edges."""
    return chord_pcm((freq_hz,), duration_ms, amplitude)


def chord_pcm(freqs_hz: tuple[float, ...], duration_ms: int, amplitude: float) -> bytes:
    """The sum of sines of ``freqs_hz``, each of ``amplitude`` (of full scale), as 8 kHz 16-bit PCM, with
    short raised-cosine edges."""
    if (not freqs_hz or not all(0 < f < SAMPLE_RATE / 2 for f in freqs_hz) or duration_ms < 0
            or not 0 <= amplitude * len(freqs_hz) <= 1):
        raise ValueError("tones must be below 4 kHz, their amplitudes together 0..1, duration >= 0")
    n = SAMPLE_RATE * duration_ms // 1000
    ramp = min(SAMPLE_RATE * _RAMP_MS // 1000, n // 2)
    peak = amplitude * 32767
    steps = [2 * math.pi * f / SAMPLE_RATE for f in freqs_hz]
    samples = array("h", bytes(2 * n))
    for i in range(n):
        edge = min(i, n - 1 - i)
        gain = 0.5 - 0.5 * math.cos(math.pi * edge / ramp) if edge < ramp else 1.0
        samples[i] = int(round(peak * gain * sum(math.sin(step * i) for step in steps)))
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


# -- ringback ------------------------------------------------------------------------

#: a full-scale sine in G.711 (A-law and mu-law alike, to 0.03 dB) is +3.14 dBm0
DBM0_FULL_SCALE_SINE = 3.14
RINGBACK_LEVEL_DBM0 = -19.0


def amplitude_for_dbm0(level_dbm0: float) -> float:
    """The peak (a fraction of full scale) of a sine at ``level_dbm0``."""
    return 10 ** ((level_dbm0 - DBM0_FULL_SCALE_SINE) / 20)


@dataclass(frozen=True)
class Cadence:
    """A call progress tone: its frequencies (summed), and its on and off times in turn (on first), ms."""

    freqs_hz: tuple[float, ...]
    on_off_ms: tuple[int, ...]
    level_dbm0: float = RINGBACK_LEVEL_DBM0

    @property
    def period_ms(self) -> int:
        return sum(self.on_off_ms)


#: the ringback tones by the name the config gives them (``ringback = "de"``); sources in the module's docstring
RINGBACK_CADENCES: dict[str, Cadence] = {
    "de": Cadence((425,), (1000, 4000)),
    "us": Cadence((440, 480), (2000, 4000)),
    "uk": Cadence((400, 450), (400, 200, 400, 2000)),
}

#: the ringback a region (``[sip] default_region``) hears by default; any other region: "de", the 425 Hz
#: 1 s / 4 s ringing tone that most European networks use (E.180 Suppl. 2)
_RINGBACK_BY_REGION = {"DE": "de", "AT": "de", "CH": "de", "US": "us", "CA": "us", "GB": "uk"}


def ringback_for_region(region: str) -> str:
    """The ringback tone's name for a region code ("DE" -> "de", "US" -> "us", "GB" -> "uk", others "de")."""
    return _RINGBACK_BY_REGION.get(region.upper(), "de")


def cadence_pcm(cadence: Cadence) -> bytes:
    """One period of ``cadence`` as 8 kHz 16-bit PCM: its bursts at its level, silence between."""
    if not cadence.on_off_ms or any(ms <= 0 or ms % FRAME_MS for ms in cadence.on_off_ms):
        raise ValueError(f"on and off times must be positive multiples of {FRAME_MS} ms: {cadence.on_off_ms}")
    amplitude = amplitude_for_dbm0(cadence.level_dbm0)
    parts = []
    for i, ms in enumerate(cadence.on_off_ms):
        parts.append(chord_pcm(cadence.freqs_hz, ms, amplitude) if i % 2 == 0
                     else bytes(2 * (SAMPLE_RATE * ms // 1000)))
    return b"".join(parts)


@lru_cache(maxsize=None)
def _ringback_frames(name: str) -> dict[str, tuple[bytes, ...]]:
    pcm = cadence_pcm(RINGBACK_CADENCES[name])
    return {codec: tuple(frames_from_pcm(pcm, codec)) for codec in CODECS}


def ringback_tone(name: str) -> dict[str, tuple[bytes, ...]]:
    """One period of the ringback tone ``name`` ("de", "us", "uk") as frames in both codecs, for the player
    to loop; made once per name."""
    if name not in RINGBACK_CADENCES:
        raise ValueError(f"no ringback tone {name!r}; there are {', '.join(sorted(RINGBACK_CADENCES))}")
    return _ringback_frames(name)
