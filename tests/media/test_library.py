"""The prompt library: committed WAVs, 20 ms frames, the cache, and operator recordings that override."""

import math
import shutil
import struct
import subprocess
import wave

import numpy as np
import pytest

from tests.conftest import in_ci

from media import g711, phrases
from media.library import BUILTIN_PROMPTS, FRAME_SAMPLES, PromptError, PromptLibrary, PromptMissing


def write_wav(path, rate, channels, samples_per_channel):
    """A 16-bit WAV; ``samples_per_channel`` is a list of channels, each a list of ints."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = [s for group in zip(*samples_per_channel) for s in group]
        w.writeframes(struct.pack(f"<{len(frames)}h", *frames))


def sine(freq_hz, rate, seconds, amp=12000):
    return [int(amp * math.sin(2 * math.pi * freq_hz * i / rate)) for i in range(int(rate * seconds))]


def peak_hz(pcm: bytes, rate=8000) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize("lang", phrases.LANGUAGES)
def test_committed_set_is_complete_8khz_mono_16bit(lang):
    """Every prompt the phrases use is committed for both languages, as 8 kHz mono 16-bit WAV with sound in it."""
    folder = BUILTIN_PROMPTS / lang
    for name in phrases.PROMPT_TEXTS[lang]:
        with wave.open(str(folder / f"{name}.wav")) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2), name
            pcm = w.readframes(w.getnframes())
        level = np.abs(np.frombuffer(pcm, dtype="<i2")).max()
        assert 0.1 < w.getnframes() / 8000 < 10 and level > 3000, name
    total = sum(p.stat().st_size for p in BUILTIN_PROMPTS.glob("*/*.wav"))
    assert total < 1_800_000      # 1.61 MB with the one-minute offer (3 prompts a language): the set stays small


def test_frames_are_160_bytes_with_pauses_between_parts():
    """A phrase becomes whole 160-byte frames: each part padded to 20 ms, 60 ms of silence between parts."""
    lib = PromptLibrary(lang="de")
    names = phrases.remaining_minutes(21, "de")
    alaw = lib.frames(names, "PCMA")
    ulaw = lib.frames(names, "PCMU")
    assert all(len(f) == 160 for f in alaw + ulaw) and len(alaw) == len(ulaw)
    part_frames = [len(lib.frames([n], "PCMA")) for n in names]
    assert len(alaw) == sum(part_frames) + 3 * (len(names) - 1)
    # the first pause sits right after the first part, as A-law silence
    assert alaw[part_frames[0]:part_frames[0] + 3] == [b"\xd5" * 160] * 3
    # the frames are the PCM, encoded
    pcm = lib.pcm(names)
    assert len(pcm) == 320 * len(alaw)
    assert b"".join(alaw) == g711.encode_alaw(pcm)
    assert b"".join(ulaw) == g711.encode_ulaw(pcm)


def test_cache_reads_each_file_once():
    """A prompt is read from disk once; later phrases that use it hit the cache."""
    lib = PromptLibrary(lang="en")
    lib.frames(["one", "minute"], "PCMA")
    assert lib.loads == 2
    hits = lib.hits
    lib.frames(["one", "minute"], "PCMA")
    lib.frames(["one", "and", "one"], "PCMU")
    assert lib.loads == 3 and lib.hits > hits
    lib.clear()
    lib.pcm(["one"])
    assert lib.loads == 4


def test_operator_wav_at_44k_stereo_overrides_one_prompt(tmp_path):
    """An operator's 44.1 kHz stereo WAV (read without ffmpeg) replaces one prompt, resampled to 8 kHz mono; others stay built in."""
    write_wav(tmp_path / "minute.wav", 44100, 2, [sine(1000, 44100, 0.5), sine(1000, 44100, 0.5)])
    lib = PromptLibrary(lang="en", custom_folder=tmp_path)
    assert lib.path("minute") == tmp_path / "minute.wav"
    assert lib.path("one") == BUILTIN_PROMPTS / "en" / "one.wav"
    pcm = lib.pcm(["minute"])
    assert abs(len(pcm) // 2 - 4000) < FRAME_SAMPLES
    assert abs(peak_hz(pcm) - 1000) < 20
    assert lib.pcm(["one"]) == PromptLibrary(lang="en").pcm(["one"])


def test_low_pass_before_resampling_keeps_highs_out_of_the_band(tmp_path):
    """A 44.1 kHz recording's content above 4 kHz is attenuated rather than folded into the telephone band."""
    write_wav(tmp_path / "lo.wav", 44100, 1, [sine(1000, 44100, 0.5)])
    write_wav(tmp_path / "hi.wav", 44100, 1, [sine(6000, 44100, 0.5)])
    lib = PromptLibrary(lang="en", custom_folder=tmp_path)
    lo = np.abs(np.frombuffer(lib.pcm(["lo"]), dtype="<i2").astype(float)).mean()
    hi = np.abs(np.frombuffer(lib.pcm(["hi"]), dtype="<i2").astype(float)).mean()
    assert hi < lo / 3


@pytest.mark.parametrize("suffix", [".mp3", ".ogg"])
def test_operator_recording_in_another_format_through_ffmpeg(tmp_path, suffix):
    """An operator's MP3/OGG in <folder>/<lang>/ overrides the prompt, decoded through ffmpeg to 8 kHz."""
    if shutil.which("ffmpeg") is None:
        if in_ci():
            pytest.fail("ffmpeg is not installed (scripts/test.sh installs it; CI=true: no skips)")
        pytest.skip("needs ffmpeg (Debian package ffmpeg)")
    (tmp_path / "de").mkdir()
    out = tmp_path / "de" / f"euro{suffix}"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=800:duration=0.6",
                    "-ar", "22050", str(out)], check=True)
    lib = PromptLibrary(lang="de", custom_folder=tmp_path)
    assert lib.path("euro") == out
    pcm = lib.pcm(["euro"])
    assert abs(len(pcm) // 2 - 4800) < 3 * FRAME_SAMPLES
    assert abs(peak_hz(pcm) - 800) < 20
    assert all(len(f) == 160 for f in lib.frames(["euro"], "PCMU"))


def test_bad_names_and_broken_recordings_are_clear_errors(tmp_path):
    """An unknown or path-like name is PromptMissing; an unreadable operator file is a PromptError naming it."""
    lib = PromptLibrary(lang="de", custom_folder=tmp_path)
    for bad in ("nope", "../de/eins", ""):
        with pytest.raises(PromptMissing):
            lib.frames([bad], "PCMA")
    (tmp_path / "eins.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(PromptError, match="eins.wav"):
        lib.preload(["eins"])
    with pytest.raises(ValueError):
        lib.frames(["zwei"], "G729")


def test_preload_loads_every_builtin_prompt():
    """preload() reads and encodes the whole language at start, so calls never wait on disk."""
    lib = PromptLibrary(lang="en")
    assert lib.preload() == len(phrases.PROMPT_TEXTS["en"])
    loads = lib.loads
    lib.frames(phrases.no_credit("en"), "PCMA")
    assert lib.loads == loads


def test_a_whole_recording_as_frames_for_the_ringback(tmp_path):
    """recording_frames: a 44.1 kHz stereo WAV of 1.5 s becomes 75 frames of 160 bytes in each codec, its
    440 Hz kept; a missing file, one with no audio and one too long are PromptErrors naming the file."""
    from media.library import recording_frames
    song = sine(440, 44100, 1.5)
    write_wav(tmp_path / "hold.wav", 44100, 2, [song, song])
    frames = recording_frames(tmp_path / "hold.wav", max_s=600)
    assert sorted(frames) == ["PCMA", "PCMU"] and len(frames["PCMA"]) == len(frames["PCMU"]) == 75
    pcm = np.frombuffer(g711.decode(b"".join(frames["PCMU"]), "PCMU"), "<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(pcm[800:-800]))
    assert abs(np.fft.rfftfreq(len(pcm) - 1600, 1 / 8000)[np.argmax(spectrum)] - 440) < 5
    with pytest.raises(PromptError, match="no such file: .*gone.wav"):
        recording_frames(tmp_path / "gone.wav", max_s=600)
    write_wav(tmp_path / "empty.wav", 8000, 1, [[]])
    with pytest.raises(PromptError, match="empty.wav holds no audio"):
        recording_frames(tmp_path / "empty.wav", max_s=600)
    with pytest.raises(PromptError, match="hold.wav lasts 2 s, more than the 1 s"):
        recording_frames(tmp_path / "hold.wav", max_s=1)
