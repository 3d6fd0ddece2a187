"""Support for the call media tests (no tests here): a carrier and an agent phone on loopback, and a rig.

The relay's sockets are real (127.0.0.1, a port range at random in 40000-60000);
the relay's timers and the player run on a ``task.Clock``.  One :meth:`Rig.step`
is 20 ms: each phone that talks sends one G.711 packet of its test tone, the
real reactor runs until the relay has read them, then the clock moves 20 ms
(the player sends its frames, the relay its silence fill).
"""

from __future__ import annotations

import math

import numpy as np
from twisted.internet import reactor
from twisted.internet.task import Clock

from b2bua.callmedia import CallMediaFactory, MediaRefused, PromptLibraries
from media import g711
from media.engine import LocalEngine
from media.player import Player
from media.relay import MediaSession, Relay
from media.rtp import build_rtp, parse_rtp
from media.workers import WorkerSession
from tests.media.test_injection import band_level, find  # noqa: F401  (the same correlation as the media tests)
from tests.support.media_workers import memory_engine, worker_relay_session
from tests.support.relay import Endpoint, port_is_free, pump, random_range, settle

#: one cache for the whole test run, as the app has one
LIBRARIES = PromptLibraries()
PT_CODEC = {0: "PCMU", 8: "PCMA"}
CODEC_PT = {"PCMU": 0, "PCMA": 8}
TONE_AMP = 3000


def free_range(size: int = 60) -> tuple[int, int]:
    """A random port range in 40000-60000 whose ports are all free right now.

    Other runs on this machine (relay benchmarks) hold thousands of ports at
    times, so a purely random range can fall into a block that is all taken.
    """
    for _ in range(50):
        lo, hi = random_range(size)
        if all(port_is_free(p) for p in range(lo, hi + 1)):
            return lo, hi
    return random_range(size)


class Phone(Endpoint):
    """A carrier or agent media endpoint that talks a test tone and records what it hears."""

    def __init__(self, tone_hz: float, ssrc: int) -> None:
        super().__init__("127.0.0.1")
        self.tone_hz = tone_hz
        self.ssrc = ssrc
        self.codec = "PCMA"
        self.k = 0

    def sdp(self, formats: str = "8 0 101", direction: str = "sendrecv", version: int = 1,
            host: str = "127.0.0.1", port: int | None = None) -> bytes:
        lines = ["v=0", f"o=phone 4711 {version} IN IP4 127.0.0.1", "s=-", f"c=IN IP4 {host}", "t=0 0",
                 f"m=audio {self.port if port is None else port} RTP/AVP {formats}",
                 f"a=rtcp:{self.rtcp.getsockname()[1]}"]
        if "101" in formats.split():
            lines += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"]
        lines += ["a=ptime:20", f"a={direction}"]
        return ("\r\n".join(lines) + "\r\n").encode()

    def tone_pcm(self, k: int) -> bytes:
        t = np.arange(k * 160, (k + 1) * 160) / 8000
        return (TONE_AMP * np.sin(2 * math.pi * self.tone_hz * t)).astype("<i2").tobytes()

    def talk(self, port: int) -> None:
        """Send the next 20 ms of the tone to ``port`` (our relay leg)."""
        payload = g711.encode(self.tone_pcm(self.k), self.codec)
        self.send(build_rtp(CODEC_PT[self.codec], 1000 + self.k, 160 * self.k, self.ssrc, payload), port)
        self.k += 1

    def heard(self) -> tuple[np.ndarray, list]:
        """The audio received, decoded in arrival order (must be one gapless stream); and the packets."""
        self.poll()
        packets = [parse_rtp(d) for d in self.got]
        audio = [p for p in packets if p.payload_type in PT_CODEC]
        seqs = [p.sequence for p in audio]
        assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:])), "gaps in the stream we sent"
        pcm = b"".join(g711.decode(p.payload, PT_CODEC[p.payload_type]) for p in audio)
        return np.frombuffer(pcm, dtype="<i2").astype(float), packets


#: the engine a Rig runs its call's media on: "local" (in process) or "worker" (an in-memory media worker);
#: the b2bua conftest sets it per test for the modules that run on both (``BOTH_ENGINES``)
ENGINE = "local"


class Rig:
    """A relay, a player and the factory on one Clock; a carrier phone (leg a) and an agent phone (leg b).

    With :data:`ENGINE` "worker" the relay and player run behind an in-memory media worker
    (``tests/support/media_workers.py``): ``relay`` and ``player`` are the worker's."""

    def __init__(self, silence_timeout_s: int = 60, withheld_pin: bool = False, lang: str = "de",
                 engine: str | None = None) -> None:
        self.engine_kind = engine or ENGINE
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.player = Player(self.clock)
        self.carrier = Phone(2500, 0xCA11E4)
        self.agent = Phone(3000, 0xA6E47)
        self.dead: list[str] = []
        self.digits: list[str] = []
        self.library = LIBRARIES.get(lang)
        for attempt in range(5):
            # other runs on this machine may hold a block of ports where our random range fell: move on
            lo, hi = free_range(60)
            if self.engine_kind == "worker":
                self.engine, self.spawner = memory_engine(self.clock, "127.0.0.1", lo, hi, self._worker_engine,
                                                          silence_timeout_s=silence_timeout_s)
                self.relay = self.spawner.links[0].server.engine.relay
            else:
                self.relay = Relay(reactor, "127.0.0.1", lo, hi, silence_timeout_s=silence_timeout_s,
                                   clock=self.clock)
                self.engine = LocalEngine(self.relay, self.player, LIBRARIES)
            self.factory = CallMediaFactory(self.clock, self.engine)
            try:
                self.media = self.factory.for_call("call-1", lang, on_dead=self.dead.append,
                                                   on_dtmf=self.digits.append, withheld_pin=withheld_pin)
                break
            except MediaRefused:
                self.engine.close()
        else:
            raise AssertionError("no free RTP port range found in five tries")

    def _worker_engine(self, settings: dict) -> LocalEngine:
        relay = Relay(reactor, settings["address"], settings["port_min"], settings["port_max"],
                      silence_timeout_s=settings["silence_timeout_s"], clock=self.clock)
        return LocalEngine(relay, self.player, LIBRARIES)

    def bridge(self, carrier_formats: str = "8 0 101", agent_codec: str = "PCMA") -> tuple[bytes, bytes]:
        """Carrier offer -> our answer; our offer -> the agent's answer with ``agent_codec``."""
        answer_a = self.media.answer_for_a(self.carrier.sdp(carrier_formats))
        offer_b = self.media.offer_for_b()
        self.agent.codec = agent_codec
        self.media.b_answered(self.agent.sdp(f"{CODEC_PT[agent_codec]} 101"))
        self.carrier.codec = self.media.a.codec
        return answer_a, offer_b

    def step(self, frames: int = 1, carrier: bool = True, agent: bool = True, drain: bool = True) -> None:
        s = relay_session(self.media)
        for _ in range(frames):
            want_a = s.leg_a.rx_packets + (1 if carrier else 0)
            want_b = s.leg_b.rx_packets + (1 if agent and self.media.b is not None else 0)
            if carrier:
                self.carrier.talk(s.leg_a.local_port)
            if agent and self.media.b is not None:
                self.agent.talk(s.leg_b.local_port)
            pump(lambda: s.leg_a.rx_packets >= want_a and s.leg_b.rx_packets >= want_b, 1.0)
            self.clock.advance(0.02)
            self.carrier.poll()         # often: a socket buffer holds only a few hundred datagrams
            self.agent.poll()
        if drain:                       # let the last frame's datagrams arrive
            settle(0.005)
        self.carrier.poll()
        self.agent.poll()

    def close(self) -> None:
        self.media.close()
        self.engine.close()
        self.relay.close()
        self.carrier.close()
        self.agent.close()
        settle(0.005)


def relay_session(media) -> MediaSession:
    """The relay's own session under a call's media (its legs and streams), whichever engine runs it."""
    if isinstance(media.session, WorkerSession):
        return worker_relay_session(media.session)
    return media.session.media


def pcm_of(library, names) -> np.ndarray:
    return np.frombuffer(library.pcm(names), dtype="<i2").astype(float)
