"""The media engine: what a call's media (``b2bua.callmedia``) needs of the relay and the player, as one seam.

:class:`MediaEngine` opens an :class:`EngineSession` per call: its ports are
known at once (they go into our SDP), leg b's pair is bound when an agent is
rung, each leg is configured with what it negotiated
(:class:`media.sdp.Negotiated`), and sounds are played by description
(:class:`media.sounds.Sound`: the engine turns prompt names, a tone or a
ringback setting into frames from its own libraries).  What the relay notices
comes back through the session's three callbacks: a leg that went silent (with
when it was last heard), a telephone event, and ``on_failed(reason)`` when the
engine itself lost the call's media (a media worker died: "media_failed").

Two engines provide it, and every call media test runs on both:

- :class:`LocalEngine` (``[media] workers = 0``): the relay and the player in
  this process, on this reactor; exactly the relay's own objects, with no copy
  and no message in between, so the in-process path keeps its speed.
- ``media.workers.WorkerEngine``: the same sessions run by media worker
  processes, driven over a local socket to each worker (``docs/media-workers.md``).

Both raise :class:`media.ports.PortsExhausted` from :meth:`MediaEngine.open_session`
and :meth:`EngineSession.bind_b` when no pair is free.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, Sequence

from twisted.internet.defer import Deferred, succeed

from .library import PromptLibrary
from .player import Mode, Player
from .ports import PortsExhausted
from .relay import MediaSession, Relay, RelayCounters
from .sdp import Negotiated
from .sounds import PROMPTS, RINGBACK, TONE, TONES, PromptLibraries, Ringbacks, Sound

__all__ = ["MediaEngine", "EngineSession", "PlayHandle", "LocalEngine", "LocalSession", "PlayPart",
           "SilenceHandler", "DtmfHandler", "FailedHandler", "PortsExhausted"]

#: on_silence(leg name, when that leg was last heard in clock seconds)
SilenceHandler = Callable[[str, float], object]
#: on_dtmf(leg name, digit, end): each event's start and end once
DtmfHandler = Callable[[str, str, bool], object]
#: on_failed(reason): the engine lost the call's media ("media_failed")
FailedHandler = Callable[[str], object]


@dataclass(frozen=True)
class PlayPart:
    """One leg's part of a playback: the leg ("a" or "b"), what it hears, and how (REPLACE or MIX)."""

    leg: str
    sound: Sound
    mode: Mode


class PlayHandle(Protocol):
    """A playback started by :meth:`EngineSession.play`: ``done`` fires True when played whole, False when
    stopped (or it could not play); ``stop()`` interrupts it."""

    done: Deferred

    def stop(self) -> None: ...


class EngineSession(Protocol):
    """One call's media in an engine: leg a (carrier) and leg b (agent)."""

    #: leg a's RTP and RTCP ports (bound when the session opens)
    a_port: int
    a_rtcp_port: int
    #: leg b's, 0 until :meth:`bind_b`
    b_port: int
    b_rtcp_port: int

    def bind_b(self) -> int:
        """Bind leg b's pair (once); its RTP port.  Raises PortsExhausted."""

    def configure_leg(self, leg: str, negotiated: Negotiated) -> None:
        """Apply what leg ``leg`` agreed: codec, payload types, the peer's address (latching starts anew)."""

    def play(self, parts: Sequence[PlayPart], loop: bool = False) -> PlayHandle:
        """Play on each part's leg at once (queued behind what plays there).  A sound the engine cannot
        turn into frames raises :class:`media.library.PromptError` here or fires ``done`` with False."""

    def stop(self) -> None:
        """Stop everything playing or queued on both legs."""

    def close(self) -> None:
        """RTCP BYE, the ports freed; idempotent.  No callback is called after it."""


class MediaEngine(Protocol):
    """Opens the calls' media sessions; the node's figures and reloads go through it."""

    #: the address our SDP names
    address: str
    #: port pairs in the whole range (the share for refusals is a part of it)
    port_pairs: int
    #: the relay's silence timeout, for the log line of a silent leg
    silence_timeout_s: int
    #: media workers started again after one died (always 0 in process)
    restarts: int

    def open_session(self, label: str, lang: str, prompts_dir: str, *, on_silence: SilenceHandler,
                     on_dtmf: DtmfHandler, on_failed: FailedHandler) -> EngineSession:
        """A call's media, leg a bound; its prompts from the (``lang``, ``prompts_dir``) library in force now
        (a reload does not change a running call's).  Raises PortsExhausted."""

    def counters(self) -> RelayCounters:
        """The relay's counters over every session (a worker engine: as last reported, plus its own gauges)."""

    def set_latch_networks(self, networks: Iterable[str]) -> None:
        """Leg a may latch onto these networks from now (a reload of ``[carriers] trusted``)."""

    def reload_prompts(self, prompt_sets: Iterable[tuple[str, str]], ringback_files: Iterable[str]) -> int:
        """Read the operators' prompt folders and music again, all or nothing (raises PromptError and keeps the
        old on a bad file); how many libraries are loaded."""

    def close(self) -> None:
        """Every session closed (at shutdown)."""


# -- in process ----------------------------------------------------------------------------------


class LocalSession:
    """An :class:`EngineSession` on this process's relay and player: the :class:`MediaSession` itself."""

    __slots__ = ("engine", "media", "library", "_on_silence", "_on_dtmf")

    def __init__(self, engine: "LocalEngine", media: MediaSession, library: PromptLibrary,
                 on_silence: SilenceHandler, on_dtmf: DtmfHandler) -> None:
        self.engine = engine
        self.media = media          # the relay's session (tests look at its legs)
        self.library = library
        self._on_silence = on_silence
        self._on_dtmf = on_dtmf

    @property
    def a_port(self) -> int:
        return self.media.leg_a.local_port

    @property
    def a_rtcp_port(self) -> int:
        return self.media.leg_a.local_rtcp_port

    @property
    def b_port(self) -> int:
        return self.media.leg_b.local_port

    @property
    def b_rtcp_port(self) -> int:
        return self.media.leg_b.local_rtcp_port

    def bind_b(self, socks: tuple[socket.socket, socket.socket] | None = None) -> int:
        """See :meth:`EngineSession.bind_b`; ``socks``: a pair bound already (a worker's, bound by the node)."""
        self.media.bind_b(socks)
        return self.media.leg_b.local_port

    def configure_leg(self, leg: str, negotiated: Negotiated) -> None:
        self.media.configure_leg(leg, negotiated)

    def frames(self, sound: Sound):
        """The frames by codec that ``sound`` names; raises PromptError or ValueError."""
        if sound.kind == PROMPTS:
            return self.library.frames_by_codec(list(sound.names))
        if sound.kind == TONE:
            tone = TONES.get(sound.name)
            if tone is None:
                raise ValueError(f"no tone named {sound.name!r}")
            return tone()
        if sound.kind == RINGBACK:
            found = self.engine.ringbacks.get(sound.name)
            if found is None:
                raise ValueError("no ringback to play")
            return found[1]
        raise ValueError(f"no sound of kind {sound.kind!r}")

    def play(self, parts: Sequence[PlayPart], loop: bool = False) -> PlayHandle:
        if not parts:
            return _Nothing()
        resolved: dict[Sound, object] = {}      # the same words to both legs are read once
        streams, frames, modes = [], [], []
        for part in parts:
            if part.sound not in resolved:
                resolved[part.sound] = self.frames(part.sound)
            streams.append(self.media.a_out if part.leg == "a" else self.media.b_out)
            frames.append(resolved[part.sound])
            modes.append(part.mode)
        return self.engine.player.play(streams, frames, modes, loop=loop)

    def stop(self) -> None:
        player = self.engine.player
        player.stop_stream(self.media.a_out)
        player.stop_stream(self.media.b_out)

    def close(self) -> None:
        self.stop()
        self.media.close()
        # the owner's methods are let go: the owner holds this session, so the two would be a cycle
        self._on_silence = _ignore
        self._on_dtmf = _ignore

    # the relay's callbacks, in the engine's terms
    def _silence(self, media: MediaSession, leg: str) -> None:
        self._on_silence(leg, media.leg(leg).last_rx_at)

    def _dtmf(self, leg: str, digit: str, end: bool) -> None:
        self._on_dtmf(leg, digit, end)


def _ignore(*args) -> None:
    pass


class _Nothing:
    """A playback of nothing: done at once, False."""

    def __init__(self) -> None:
        self.done = succeed(False)

    def stop(self) -> None:
        pass


class LocalEngine:
    """:class:`MediaEngine` in this process: one :class:`Relay`, one :class:`Player`, the prompt libraries and
    the ringbacks (``[media] workers = 0``, and what each media worker runs inside)."""

    def __init__(self, relay: Relay, player: Player, libraries: PromptLibraries | None = None,
                 ringbacks: Ringbacks | None = None) -> None:
        self.relay = relay
        self.player = player
        self.libraries = libraries if libraries is not None else PromptLibraries()
        self.ringbacks = ringbacks if ringbacks is not None else Ringbacks()
        self.restarts = 0           # nothing to restart: the relay is this process

    @property
    def address(self) -> str:
        return self.relay.address

    @property
    def port_pairs(self) -> int:
        return self.relay.ports.size

    @property
    def silence_timeout_s(self) -> int:
        return self.relay.silence_timeout_s

    def open_session(self, label: str, lang: str, prompts_dir: str = "", *,
                     on_silence: SilenceHandler = lambda leg, at: None,
                     on_dtmf: DtmfHandler = lambda leg, digit, end: None,
                     on_failed: FailedHandler = lambda reason: None,
                     a_socks: tuple[socket.socket, socket.socket] | None = None) -> LocalSession:
        """See :meth:`MediaEngine.open_session`; ``a_socks``: leg a's pair bound already (a worker's, bound by the
        node)."""
        library = self.libraries.get(lang, prompts_dir)
        session = LocalSession(self, None, library, on_silence, on_dtmf)    # type: ignore[arg-type]
        session.media = self.relay.open_session(on_silence=session._silence, on_dtmf=session._dtmf, label=label,
                                                bind_b=False, a_socks=a_socks)
        return session

    def counters(self) -> RelayCounters:
        return self.relay.counters()

    def set_latch_networks(self, networks: Iterable[str]) -> None:
        self.relay.set_latch_networks(networks)

    def load_prompts(self, prompt_sets: Iterable[tuple[str, str]], ringback_files: Iterable[str]) -> int:
        """At start: every prompt set and music file loaded now; raises PromptError naming a bad file."""
        self.ringbacks.preload(ringback_files)
        return self.libraries.preload(prompt_sets)

    def reload_prompts(self, prompt_sets: Iterable[tuple[str, str]], ringback_files: Iterable[str]) -> int:
        fresh = Ringbacks()
        fresh.refresh(ringback_files)       # first: a bad music file leaves the prompts untouched too
        count = self.libraries.refresh(prompt_sets)
        self.ringbacks = fresh
        return count

    def close(self) -> None:
        self.relay.close()
