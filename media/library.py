"""The prompt library: recordings loaded once, as 8 kHz 16-bit PCM and as 20 ms G.711 frames.

Built-in prompts live in ``media/prompts/<lang>/<name>.wav`` (8 kHz mono
16-bit, made by ``scripts/make_prompts.py``).  An operator may point a profile
at a folder of their own recordings (``prompts_dir``): a file there named after
a prompt (``<name>.<ext>`` or ``<lang>/<name>.<ext>``, any format pydub reads:
WAV without ffmpeg, MP3/OGG/FLAC/... with ffmpeg) replaces the built-in one.

Every recording goes through pydub: mixed down to mono, low-pass filtered at
3.4 kHz when it was recorded faster than 8 kHz (so resampling does not fold
its highs back into the band), resampled to 8 kHz, 16 bit.  WAV needs no
ffmpeg; other formats are decoded (and resampled) by ffmpeg.  Each part is padded
to whole 20 ms frames and encoded to A-law and mu-law once; ``frames()`` then
only joins cached frames, with a short pause between parts.

:func:`recording_frames` loads one whole recording the same way (the music an
operator names for callers to hear while agents ring), refusing one that holds
no audio or lasts too long to keep in memory.
"""

from __future__ import annotations

import pathlib
from typing import Iterable, Sequence

from . import g711

__all__ = ["PromptLibrary", "PromptError", "PromptMissing", "BUILTIN_PROMPTS", "recording_frames",
           "SAMPLE_RATE", "FRAME_MS", "FRAME_SAMPLES", "CODECS"]

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000        # 160 samples, 160 bytes of G.711
CODECS = ("PCMA", "PCMU")
LOW_PASS_HZ = 3400
BUILTIN_PROMPTS = pathlib.Path(__file__).resolve().parent / "prompts"
# What pydub can open: WAV natively, the rest through ffmpeg.
AUDIO_SUFFIXES = (".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac", ".wma",
                  ".aif", ".aiff", ".au", ".webm", ".mka")


class PromptError(Exception):
    """A recording could not be read or converted (names the file)."""


class PromptMissing(PromptError, LookupError):
    """No recording of that name, neither in the operator's folder nor built in."""


def _to_telephone_pcm(path: pathlib.Path) -> bytes:
    """Read any recording pydub understands and return 8 kHz mono signed 16-bit little-endian PCM.

    WAV is read by pydub itself (no ffmpeg); its highs are cut by pydub's
    one-pole low-pass, run twice (12 dB per octave above 3.4 kHz), before pydub
    resamples.  Other formats are decoded by ffmpeg, which is asked to low-pass
    and resample on the way (its resampler filters properly).
    """
    from pydub import AudioSegment
    from pydub.effects import low_pass_filter
    fmt = path.suffix[1:].lower()
    try:
        if fmt == "wav":
            seg = AudioSegment.from_file(str(path), format="wav")
        else:
            seg = AudioSegment.from_file(str(path), format=fmt or None, parameters=[
                "-ac", "1", "-af", f"lowpass=f={LOW_PASS_HZ}", "-ar", str(SAMPLE_RATE)])
    except Exception as exc:  # pydub raises CouldntDecodeError, OSError, IndexError... on bad files
        raise PromptError(f"cannot read prompt recording {path}: {exc}") from exc
    if seg.channels != 1:
        seg = seg.set_channels(1)
    if seg.sample_width != 2:
        seg = seg.set_sample_width(2)
    if seg.frame_rate > SAMPLE_RATE:
        seg = low_pass_filter(low_pass_filter(seg, LOW_PASS_HZ), LOW_PASS_HZ)
    if seg.frame_rate != SAMPLE_RATE:
        seg = seg.set_frame_rate(SAMPLE_RATE)
    return seg.raw_data


def _encode_frames(pcm: bytes, codec: str) -> tuple[bytes, ...]:
    """8 kHz 16-bit PCM as 160-byte frames in ``codec``, the last padded with silence."""
    frame_bytes = FRAME_SAMPLES * 2
    coded = g711.encode(pcm + b"\x00" * (-len(pcm) % frame_bytes), codec)
    return tuple(coded[i:i + FRAME_SAMPLES] for i in range(0, len(coded), FRAME_SAMPLES))


def recording_frames(path: str | pathlib.Path, *, max_s: int) -> dict[str, tuple[bytes, ...]]:
    """The recording at ``path`` (any format pydub reads, converted as prompts are) as 20 ms frames in both
    codecs; raises PromptError naming the file when it is missing or unreadable, holds less than one frame
    of audio, or lasts more than ``max_s`` seconds."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise PromptError(f"no such file: {path}")
    pcm = _to_telephone_pcm(path)
    seconds = len(pcm) / (2 * SAMPLE_RATE)
    if len(pcm) < 2 * FRAME_SAMPLES:
        raise PromptError(f"{path} holds no audio")
    if seconds > max_s:
        raise PromptError(f"{path} lasts {seconds:.0f} s, more than the {max_s} s kept in memory")
    return {codec: _encode_frames(pcm, codec) for codec in CODECS}


class PromptLibrary:
    """Prompts of one language, loaded on first use and cached.

    ``folder`` is the built-in set (holding ``<lang>/``); ``custom_folder`` the
    operator's recordings that take precedence.  ``pause_ms`` of silence go
    between the parts of a phrase.  ``loads`` counts files read, ``hits`` the
    cache hits (for tests and the operator's status).
    """

    def __init__(self, folder: str | pathlib.Path | None = None, lang: str = "de",
                 custom_folder: str | pathlib.Path | None = None, pause_ms: int = 60) -> None:
        self.folder = pathlib.Path(folder) if folder else BUILTIN_PROMPTS
        self.lang = lang
        self.custom_folder = pathlib.Path(custom_folder) if custom_folder else None
        if pause_ms < 0 or pause_ms % FRAME_MS:
            raise ValueError(f"pause_ms must be a non-negative multiple of {FRAME_MS}, not {pause_ms}")
        self._pause_frames = pause_ms // FRAME_MS
        self._pcm: dict[str, bytes] = {}
        self._frames: dict[tuple[str, str], tuple[bytes, ...]] = {}
        self.loads = 0
        self.hits = 0

    # -- finding and loading ------------------------------------------------------

    def path(self, name: str) -> pathlib.Path:
        """The file that speaks ``name``: the operator's if there is one, else the built-in WAV."""
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise PromptMissing(f"not a prompt name: {name!r}")
        if self.custom_folder is not None:
            for base in (self.custom_folder / self.lang, self.custom_folder):
                for suffix in AUDIO_SUFFIXES:
                    candidate = base / f"{name}{suffix}"
                    if candidate.is_file():
                        return candidate
        builtin = self.folder / self.lang / f"{name}.wav"
        if builtin.is_file():
            return builtin
        raise PromptMissing(f"no prompt {name!r} in language {self.lang!r}")

    def names(self) -> list[str]:
        """The built-in prompt names of this language."""
        return sorted(p.stem for p in (self.folder / self.lang).glob("*.wav"))

    def has(self, name: str) -> bool:
        try:
            self.path(name)
        except PromptMissing:
            return False
        return True

    def _part_pcm(self, name: str) -> bytes:
        pcm = self._pcm.get(name)
        if pcm is not None:
            self.hits += 1
            return pcm
        pcm = _to_telephone_pcm(self.path(name))
        self.loads += 1
        self._pcm[name] = pcm
        return pcm

    def preload(self, names: Iterable[str] | None = None) -> int:
        """Load (and encode) ``names`` or every built-in prompt now; raise PromptError naming the bad file.

        Call it at start and reload, so a broken operator recording is reported then, not mid-call.
        """
        count = 0
        for name in (self.names() if names is None else names):
            for codec in CODECS:
                self._part_frames(name, codec)
            count += 1
        return count

    def clear(self) -> None:
        """Forget every cached recording (after the operator changed their folder)."""
        self._pcm.clear()
        self._frames.clear()

    # -- frames ------------------------------------------------------------------

    def _part_frames(self, name: str, codec: str) -> tuple[bytes, ...]:
        key = (name, codec)
        frames = self._frames.get(key)
        if frames is not None:
            self.hits += 1
            return frames
        frames = _encode_frames(self._part_pcm(name), codec)
        self._frames[key] = frames
        return frames

    def frames(self, names: Sequence[str], codec: str) -> list[bytes]:
        """The phrase ``names`` as 20 ms frames (160 bytes each) in ``codec``, a pause between parts."""
        if codec not in CODECS:
            raise ValueError(f"prompts are played in PCMA or PCMU, not {codec!r}")
        silence = bytes([g711.SILENCE[codec]]) * FRAME_SAMPLES
        out: list[bytes] = []
        for i, name in enumerate(names):
            if i:
                out.extend([silence] * self._pause_frames)
            out.extend(self._part_frames(name, codec))
        return out

    def frames_by_codec(self, names: Sequence[str]) -> dict[str, list[bytes]]:
        """The phrase in both codecs, as the player takes it."""
        return {codec: self.frames(names, codec) for codec in CODECS}

    def pcm(self, names: Sequence[str]) -> bytes:
        """The phrase as 8 kHz 16-bit PCM, laid out exactly like ``frames()`` (parts padded, pauses between)."""
        frame_bytes = FRAME_SAMPLES * 2
        out = bytearray()
        for i, name in enumerate(names):
            if i:
                out += b"\x00" * (frame_bytes * self._pause_frames)
            part = self._part_pcm(name)
            out += part + b"\x00" * (-len(part) % frame_bytes)
        return bytes(out)
