"""The announcement player: speaks 20 ms G.711 frames into one or more legs' outgoing streams.

``Player(reactor).play(streams, frames_by_codec, mode)`` starts (or queues,
per leg) a playback and answers a :class:`Playback` whose ``done`` Deferred
fires with True when it finished on every leg, or False when it was stopped.

Two modes:

``REPLACE``
    The relayed audio is muted on the leg and our frames are sent with
    ``send_own_audio``, one per 20 ms.

``MIX``
    An audio filter on the leg adds our audio, sample by sample with
    clipping, to each relayed payload (decoded and re-encoded in the leg's
    codec).  When relayed audio stops flowing (silence suppression, hold) and
    our audio falls more than ``mix_grace_ms`` behind, the player sends its
    frames on its own, so the prompt is still heard.

A REPLACE playback may ``loop``: its frames start again after the last, with
no gap, until it is stopped (the ringback tone or music while agents ring);
its ``done`` fires only then (False).

Pacing: frame k of a playback is due at ``start + k * 20 ms``; the player
keeps one ``callLater`` armed for the earliest due time over all legs and, when
it wakes late, sends everything that has come due (at most ``max_burst``
frames at once; beyond that the rest of the playback slides later), so the
pace follows the clock and does not drift.  A leg's queue plays its playbacks
back to back: the next starts exactly when the previous one's last frame ends.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence, Union

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from . import g711
from .library import FRAME_MS, FRAME_SAMPLES

__all__ = ["Player", "Playback", "Mode", "REPLACE", "MIX", "AudioStream"]

log = Logger()

FRAME_S = FRAME_MS / 1000
_EPS_S = 1e-6


class Mode(enum.Enum):
    REPLACE = "replace"
    MIX = "mix"


REPLACE = Mode.REPLACE
MIX = Mode.MIX


class AudioStream(Protocol):
    """What the player needs of a leg's outgoing stream (``media.stream.OutgoingStream``)."""

    codec: str

    def send_own_audio(self, payload: bytes) -> None: ...
    def set_audio_filter(self, f: Callable[[bytes], bytes] | None) -> None: ...
    def set_relay_muted(self, muted: bool) -> None: ...


FramesByCodec = Mapping[str, Sequence[bytes]]


class _State(enum.Enum):
    QUEUED = "queued"
    PLAYING = "playing"
    FINISHED = "finished"
    STOPPED = "stopped"


@dataclass(eq=False)
class _Item:
    """One playback's part on one leg."""

    playback: "Playback"
    stream: AudioStream
    mode: Mode
    frames: FramesByCodec
    count: int                          # frames
    pcm: list[int] = field(default_factory=list)   # MIX: our samples
    state: _State = _State.QUEUED
    start_s: float = 0.0
    cursor: int = 0                     # REPLACE: frames sent; MIX: samples used
    own_frames: int = 0                 # MIX: frames we had to send on our own
    loop: bool = False                  # REPLACE: start again after the last frame, until stopped

    def end_s(self) -> float:
        return self.start_s + self.count * FRAME_S


class Playback:
    """One ``play()`` call: its parts on each leg, ``done`` and ``stop()``."""

    def __init__(self, player: "Player") -> None:
        self._player = player
        self._items: list[_Item] = []
        self.done: Deferred = Deferred()
        self.stopped = False

    @property
    def finished(self) -> bool:
        """True once every leg's part has finished or been stopped."""
        return all(i.state in (_State.FINISHED, _State.STOPPED) for i in self._items)

    @property
    def frames_sent_own(self) -> int:
        """Frames sent with ``send_own_audio`` over all legs (REPLACE frames, and MIX frames sent alone)."""
        return sum(i.cursor if i.mode is REPLACE else i.own_frames for i in self._items)

    def stop(self) -> None:
        """Interrupt on every leg (the call ended, or the caller pressed a key); ``done`` fires False."""
        if self.finished:
            return
        self.stopped = True
        for item in self._items:
            self._player._stop_item(item)
        self._player._reschedule()

    def _check_done(self) -> None:
        if self.finished and not self.done.called:
            self.done.callback(not self.stopped and
                               all(i.state is _State.FINISHED for i in self._items))


class _Leg:
    def __init__(self) -> None:
        self.queue: deque[_Item] = deque()
        self.current: _Item | None = None


class Player:
    """Plays frames into outgoing streams, paced by the injected ``reactor`` (``seconds()``, ``callLater``)."""

    def __init__(self, reactor, max_burst: int = 5, mix_grace_ms: int = 60) -> None:
        if max_burst < 1 or mix_grace_ms < 0:
            raise ValueError("max_burst must be at least 1 and mix_grace_ms not negative")
        self._reactor = reactor
        self.max_burst = max_burst
        self._grace_samples = mix_grace_ms * FRAME_SAMPLES // FRAME_MS
        self._legs: dict[int, _Leg] = {}
        self._call = None

    # -- public ---------------------------------------------------------------------

    def play(self, streams: Sequence[AudioStream],
             frames_by_codec: Union[FramesByCodec, Sequence[FramesByCodec]],
             mode: Union[Mode, Sequence[Mode]] = REPLACE, *, loop: bool = False) -> Playback:
        """Play on every stream at once; returns the :class:`Playback`.

        ``frames_by_codec`` maps "PCMA"/"PCMU" to the same audio as 160-byte
        frames (``PromptLibrary.frames_by_codec``, ``tones.warning_tone``); give
        a list of such mappings (and of modes), one per stream, to play
        different audio to each leg in one call (the warning: a prompt to the
        caller, the tone to the agent).  Legs already playing queue it.
        ``loop`` (REPLACE only) plays the frames again and again until the playback is stopped.
        """
        streams = list(streams)
        per_stream = ([frames_by_codec] * len(streams) if isinstance(frames_by_codec, Mapping)
                      else list(frames_by_codec))
        modes = [mode] * len(streams) if isinstance(mode, Mode) else list(mode)
        if not (len(per_stream) == len(modes) == len(streams)):
            raise ValueError("one frames mapping and one mode per stream")
        if loop and any(Mode(m) is not REPLACE for m in modes):
            raise ValueError("only a REPLACE playback loops")
        playback = Playback(self)
        items = []
        for stream, frames, m in zip(streams, per_stream, modes):
            items.append(self._make_item(playback, stream, frames, Mode(m), loop))
        playback._items = items
        now = self._reactor.seconds()
        for item in items:
            leg = self._legs.setdefault(id(item.stream), _Leg())
            leg.queue.append(item)
            if leg.current is None:
                self._start_next(leg, now)
        self._tick()
        playback._check_done()
        return playback

    def stop_stream(self, stream: AudioStream) -> None:
        """Drop everything playing or queued on this leg (its call ended)."""
        leg = self._legs.get(id(stream))
        if leg is None:
            return
        items = ([leg.current] if leg.current else []) + list(leg.queue)
        for item in items:
            self._stop_item(item)
        self._reschedule()

    def busy(self, stream: AudioStream) -> bool:
        """Is something playing or queued on this leg?"""
        return id(stream) in self._legs

    # -- items ----------------------------------------------------------------------

    def _make_item(self, playback: Playback, stream: AudioStream, frames: FramesByCodec,
                   mode: Mode, loop: bool = False) -> _Item:
        counts = {len(f) for f in frames.values()}
        if not frames or len(counts) != 1:
            raise ValueError("frames_by_codec must hold the same number of frames for every codec")
        if stream.codec not in frames:
            raise ValueError(f"no frames in {stream.codec}, the leg's codec")
        for codec, fs in frames.items():
            if codec not in g711.DECODE_TABLES or any(len(f) != FRAME_SAMPLES for f in fs):
                raise ValueError(f"frames must be {FRAME_SAMPLES}-byte G.711 PCMA/PCMU, got {codec}")
        item = _Item(playback, stream, mode, frames, counts.pop(), loop=loop)
        if mode is MIX:
            codec = stream.codec
            table = g711.DECODE_TABLES[codec]
            item.pcm = [table[c] for frame in frames[codec] for c in frame]
        return item

    def _start_next(self, leg: _Leg, at_s: float) -> None:
        while leg.queue:
            item = leg.queue.popleft()
            if item.state is not _State.QUEUED:
                continue
            leg.current = item
            item.state = _State.PLAYING
            item.start_s = at_s
            if item.mode is REPLACE:
                item.stream.set_relay_muted(True)
            else:
                item.stream.set_audio_filter(self._mixer(item))
            return
        leg.current = None
        for key, value in list(self._legs.items()):
            if value is leg:
                del self._legs[key]

    def _finish(self, item: _Item, state: _State) -> None:
        """Restore the leg, mark the item, start the leg's next playback at ``end`` (back to back)."""
        leg = self._legs.get(id(item.stream))
        was_current = leg is not None and leg.current is item
        if item.state is _State.PLAYING:
            if item.mode is REPLACE:
                item.stream.set_relay_muted(False)
            else:
                item.stream.set_audio_filter(None)
        item.state = state
        if was_current:
            now = self._reactor.seconds()
            at = item.end_s() if state is _State.FINISHED else now
            self._start_next(leg, min(max(at, now - self.max_burst * FRAME_S), now))
        item.playback._check_done()

    def _stop_item(self, item: _Item) -> None:
        if item.state in (_State.FINISHED, _State.STOPPED):
            return
        item.playback.stopped = True
        self._finish(item, _State.STOPPED)

    # -- pacing -----------------------------------------------------------------------

    def _tick(self) -> None:
        now = self._reactor.seconds()
        for leg in list(self._legs.values()):
            # an item may finish and the next start within one tick
            for _ in range(len(leg.queue) + 1):
                item = leg.current
                if item is None:
                    break
                self._advance(item, now)
                if leg.current is item:
                    break
        self._reschedule()

    def _advance(self, item: _Item, now: float) -> None:
        if item.mode is REPLACE:
            sent = 0
            while item.cursor < item.count and item.start_s + item.cursor * FRAME_S <= now + _EPS_S:
                if sent == self.max_burst:      # far behind: send a burst, slide the rest later
                    item.start_s = now - (item.cursor - 1) * FRAME_S
                    break
                self._send(item.stream, item.frames[item.stream.codec][item.cursor])
                item.cursor += 1
                sent += 1
                if item.loop and item.cursor == item.count:     # the last frame went out: the next round
                    item.start_s, item.cursor = item.end_s(), 0
            if not item.loop and item.cursor >= item.count and now + _EPS_S >= item.end_s():
                self._finish(item, _State.FINISHED)
            return
        # MIX: the relay normally pulls our samples; when it falls silent, push them ourselves
        due = int((now - item.start_s) / FRAME_S + _EPS_S) * FRAME_SAMPLES
        sent = 0
        while item.cursor < len(item.pcm) and item.cursor + self._grace_samples < due and sent < self.max_burst:
            chunk = item.pcm[item.cursor:item.cursor + FRAME_SAMPLES]
            chunk += [0] * (FRAME_SAMPLES - len(chunk))
            enc = g711.ENCODE_TABLES[item.stream.codec]
            self._send(item.stream, bytes([enc[s & 0xFFFF] for s in chunk]))
            item.cursor += FRAME_SAMPLES
            item.own_frames += 1
            sent += 1
        if item.cursor >= len(item.pcm):
            self._finish(item, _State.FINISHED)

    def _mixer(self, item: _Item) -> Callable[[bytes], bytes]:
        stream = item.stream

        def mix(payload: bytes) -> bytes:
            if item.state is not _State.PLAYING or not payload:
                return payload
            now = self._reactor.seconds()
            # never run more than two frames ahead of the clock (a burst of relayed packets)
            allowed = int((now - item.start_s) / FRAME_S + _EPS_S) * FRAME_SAMPLES + 2 * FRAME_SAMPLES
            n = min(len(payload), len(item.pcm) - item.cursor, allowed - item.cursor)
            if n <= 0:
                return payload
            codec = stream.codec
            dec, enc = g711.DECODE_TABLES[codec], g711.ENCODE_TABLES[codec]
            ours = item.pcm
            base = item.cursor
            out = bytearray(payload)
            for i in range(n):
                v = dec[payload[i]] + ours[base + i]
                if v > 32767:
                    v = 32767
                elif v < -32768:
                    v = -32768
                out[i] = enc[v & 0xFFFF]
            item.cursor = base + n
            if item.cursor >= len(ours):
                self._wake_soon()       # finish (and start what is queued) outside the relay's call
            return bytes(out)

        return mix

    def _send(self, stream: AudioStream, payload: bytes) -> None:
        try:
            stream.send_own_audio(payload)
        except Exception:   # a broken socket must not stop the other legs' announcements
            log.failure("sending announcement audio failed")

    def _wake_soon(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = self._reactor.callLater(0, self._tick)

    def _reschedule(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        wake = None
        for leg in self._legs.values():
            item = leg.current
            if item is None:
                continue
            if item.mode is REPLACE:
                t = item.start_s + item.cursor * FRAME_S if item.cursor < item.count else item.end_s()
            else:
                now = self._reactor.seconds()
                k = int((now - item.start_s) / FRAME_S + _EPS_S) + 1
                t = item.start_s + k * FRAME_S
            wake = t if wake is None else min(wake, t)
        if wake is not None:
            # wake a hair early: due times are sums of 20 ms steps, and floats round
            self._call = self._reactor.callLater(max(0.0, wake - self._reactor.seconds() - _EPS_S), self._tick)
