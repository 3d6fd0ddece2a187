"""Announcements injected into a real OutgoingStream over a relayed test tone, found again by cross-correlation.

The "other leg" relays a 2500 Hz tone through media.stream.OutgoingStream every
20 ms on task.Clock; the player speaks a real prompt into the same stream.  What
the receiving side got (the datagrams the stream wrote) is decoded and searched
for the prompt with numpy.
"""

import math

import numpy as np
import pytest
from twisted.internet import task

from media import g711, phrases
from media.library import PromptLibrary
from media.player import MIX, REPLACE, Player
from media.rtp import RTP_HEADER, RTP_HEADER_LEN
from media.stream import OutgoingStream

TONE_HZ = 2500
TONE_AMP = 3000
IN_SSRC = 0x1234ABCD


@pytest.fixture(scope="module")
def prompt():
    """Frames (both codecs) and PCM of a real German prompt from the committed set."""
    lib = PromptLibrary(lang="de")
    names = phrases.remaining_minutes(21, "de")
    return lib.frames_by_codec(names), np.frombuffer(lib.pcm(names), dtype="<i2").astype(float)


class Call:
    """One leg's OutgoingStream with a capturing transport, fed a relayed tone in the other leg's codec."""

    def __init__(self, codec="PCMA", source_codec="PCMU"):
        self.clock = task.Clock()
        self.wire = []
        self.stream = OutgoingStream(clock=self.clock.seconds, send=self.wire.append, codec=codec,
                                     source_codec=source_codec, ssrc=0x55AA55AA)
        self.source_codec = source_codec
        self.codec = codec
        self.player = Player(self.clock)
        self.n = 0

    def tone_frame(self, k):
        t = np.arange(k * 160, (k + 1) * 160) / 8000
        pcm = (TONE_AMP * np.sin(2 * math.pi * TONE_HZ * t)).astype("<i2").tobytes()
        return g711.encode(pcm, self.source_codec)

    def relay(self, frames, flowing=True):
        """Advance 20 ms per frame, relaying one tone packet each step while ``flowing``."""
        for _ in range(frames):
            if flowing:
                pkt = RTP_HEADER.pack(0x80, 0 if self.source_codec == "PCMU" else 8, self.n & 0xFFFF,
                                      160 * self.n, IN_SSRC) + self.tone_frame(self.n)
                self.stream.relay_audio(pkt, self.clock.seconds())
            self.n += 1
            self.clock.advance(0.02)

    def received(self):
        """The receiving side's audio: payloads in sequence order, decoded to floats; and the headers."""
        headers = [RTP_HEADER.unpack_from(d, 0) for d in self.wire]
        seqs = [h[2] for h in headers]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))     # one stream, no gaps
        assert {h[4] for h in headers} == {0x55AA55AA}
        payload = b"".join(d[RTP_HEADER_LEN:] for d in self.wire)
        return np.frombuffer(g711.decode(payload, self.codec), dtype="<i2").astype(float), headers


def find(signal, pattern):
    """(lag, normalised correlation) of the best match of ``pattern`` in ``signal`` (FFT cross-correlation)."""
    n = 1 << int(math.ceil(math.log2(len(signal) + len(pattern))))
    corr = np.fft.irfft(np.fft.rfft(signal, n) * np.conj(np.fft.rfft(pattern, n)), n)[:len(signal) - len(pattern) + 1]
    lag = int(np.argmax(corr))
    seg = signal[lag:lag + len(pattern)]
    return lag, float(np.dot(seg, pattern) / (np.linalg.norm(seg) * np.linalg.norm(pattern)))


def band_level(x, hz):
    """Magnitude of ``x`` at ``hz`` (windowed DFT bin), per sample."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    i = int(np.argmin(np.abs(freqs - hz)))
    return float(spectrum[i - 2:i + 3].max()) / len(x)


def test_replace_prompt_is_received_in_place_of_the_tone(prompt):
    """REPLACE: the receiver gets tone, then exactly the prompt (correlation > 0.99) with the tone gone, then tone again."""
    frames, pcm = prompt
    call = Call()
    call.relay(10)
    done = []
    call.player.play([call.stream], frames, REPLACE).done.addCallback(done.append)
    call.relay(len(frames["PCMA"]) + 10)
    assert done == [True]
    rx, headers = call.received()
    lag, score = find(rx, pcm)
    assert lag == 10 * 160 and score > 0.99
    during = rx[lag:lag + len(pcm)]
    assert band_level(during, TONE_HZ) < 0.2 * band_level(rx[:1600], TONE_HZ)
    assert band_level(rx[-1600:], TONE_HZ) > 0.8 * band_level(rx[:1600], TONE_HZ)   # the relay is back
    assert headers[10][1] & 0x80                                                   # marker on our first frame
    assert call.stream.packets_muted == len(frames["PCMA"])


@pytest.mark.parametrize("codec,source", [("PCMA", "PCMU"), ("PCMU", "PCMU")])
def test_mix_prompt_is_heard_over_the_tone_which_continues(prompt, codec, source):
    """MIX: the prompt is found in the received audio and the tone's spectral peak is still there under it."""
    frames, pcm = prompt
    call = Call(codec=codec, source_codec=source)
    call.relay(10)
    done = []
    call.player.play([call.stream], frames, MIX).done.addCallback(done.append)
    call.relay(len(frames[codec]) + 10)
    assert done == [True] and call.stream.packets_own == 0
    rx, _ = call.received()
    lag, score = find(rx, pcm)
    assert lag == 10 * 160 and score > 0.7          # the tone is in there too, uncorrelated
    during = rx[lag:lag + len(pcm)]
    tone_alone = band_level(rx[:1600], TONE_HZ)
    assert band_level(during, TONE_HZ) > 0.7 * tone_alone               # the tone continues under the prompt
    assert band_level(pcm, TONE_HZ) < 0.3 * tone_alone                  # ... and is not the prompt's own energy
    # what was added is the prompt: received minus the tone correlates with it
    tone = np.frombuffer(g711.decode(b"".join(call.tone_frame(k) for k in range(call.n)), source),
                         dtype="<i2").astype(float)[:len(rx)]
    _, residual_score = find((rx - tone)[lag - 160:lag + len(pcm) + 160], pcm)
    assert residual_score > 0.97


def test_mix_prompt_survives_the_relay_stopping(prompt):
    """MIX when the other side goes on hold half way: the player sends the rest alone, and all of the prompt arrives."""
    frames, pcm = prompt
    call = Call()
    call.relay(5)
    done = []
    pb = call.player.play([call.stream], frames, MIX)
    pb.done.addCallback(done.append)
    half = len(frames["PCMA"]) // 2
    call.relay(half)
    call.relay(half + 20, flowing=False)
    assert done == [True] and pb.frames_sent_own > 0
    rx, _ = call.received()
    # the second half arrives whole, from our own frames, just after the first
    tail = pcm[half * 160:]
    lag, score = find(rx, tail)
    assert score > 0.99 and abs(lag - (5 + half) * 160) <= 4 * 160
