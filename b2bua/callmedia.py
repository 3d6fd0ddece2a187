"""The call's media: :class:`b2bua.callports.CallMedia` built on ``media/`` (relay, SDP, player, prompts).

One :class:`RelayCallMedia` per call, made by :meth:`CallMediaFactory.for_call`.
It anchors the call's audio in one session of the media engine
(:mod:`media.engine`: the relay and player in this process, or in a media
worker, :mod:`media.workers`), leg "a" towards the carrier, leg "b" towards the
agent; it writes our SDP for each leg (our address and that leg's port, our own
``o=`` line whose version rises only when what we say changes), and speaks
announcements into either leg by naming them (:class:`media.sounds.Sound`): the
engine reads the frames from its own prompt libraries.  The SDP logic stays in
the node's main process whatever the engine.

SDP errors are :class:`MediaRefused` with the SIP status the carrier's INVITE is
answered with: 400 for SDP that does not parse, 488 when there is no common
codec (with the warn-code of RFC 3261 §20.43 for its Warning header: 305 when
the offer has audio but no G.711, 304 no audio, 302 audio only over SRTP), 503
when no RTP ports are free.

Codecs: the carrier's offer is answered with one G.711 law (A-law when it offers
both); our offer to the agent always lists both laws, the carrier's law first,
so that an agent taking that law needs no transcoding and one taking only the
other law still connects: the relay then transcodes both ways
(:mod:`media.stream`) and the player speaks into each leg in that leg's law.
telephone-event is offered to the agent only when the carrier offered it (an
agent's RFC 4733 key presses could not reach a carrier without it; without it
the agent's phone sends them in band, which the G.711 path carries).  An INVITE without SDP is supported as a
late offer: :meth:`RelayCallMedia.answer_for_a` then answers with our *offer*
(PCMA, PCMU, telephone-event) and the carrier's answer in the ACK goes to
:meth:`RelayCallMedia.a_acked`.

What goes wrong later is reported, never raised into the controller: a leg that
goes silent (the relay's silence timeout) and an agent answer we cannot use
both call ``on_dead(reason)`` ("media_timeout", "media_refused"), and so does
an engine that lost the call's media ("media_failed": its media worker died), so the
app can pass ``on_dead=call.abort``.  The caller's RFC 4733 key presses reach
``on_dtmf(digit)`` once per key.

While agents ring, :meth:`RelayCallMedia.start_ringback` loops the profile's
ringback into the caller's leg (the player's REPLACE mode, so nothing else is
heard): a tone of :mod:`media.tones` in the country's cadence, or the music
file the operator names (:class:`Ringbacks`, loaded at start and reload like
the operators' prompts).  It stops at the agent's answer, before the legs are
bridged, at the end of the hunt and when the call ends.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger, LogLevel

from media import phrases
from media.engine import EngineSession, LocalEngine, MediaEngine, PlayPart
from media.library import PromptError
from media.player import MIX, REPLACE, Player
from media.ports import PortsExhausted
from media.relay import Relay
from media.sounds import (NO_RINGBACK, PROMPTS, RINGBACK, RINGBACK_FILE_MAX_S, TONE, PromptLibraries, Ringbacks,
                          Sound, ringback_name)
from media.sdp import (AUDIO_CODECS, AudioOffer, LocalSdp, Negotiated, SdpError, SessionDescription,
                       accept_answer, answer_direction, answer_offer, audio_offer, check_offer, chosen_codec,
                       make_offer, offered_codecs, parse_sdp, write_sdp)
from media.tones import RINGBACK_CADENCES

from .callports import Announcement, MediaRefused, Say

__all__ = ["MediaRefused", "PromptLibraries", "Ringbacks", "CallMediaFactory", "RelayCallMedia", "phrase_for",
           "agent_phrase_for", "prompt_sets", "ringback_files", "RINGBACK_FILE_MAX_S"]

log = Logger(namespace="b2bua.callmedia")

DEFAULT_WARNING_S = 120


def _warning_left_s(announcement: Announcement) -> int:
    """The seconds a warning says are left: its ``seconds``, else its ``minutes``, else two minutes."""
    if announcement.seconds is not None:
        return max(0, int(announcement.seconds))
    if announcement.minutes is not None:
        return max(0, min(int(announcement.minutes), phrases.MAX_NUMBER)) * 60
    return DEFAULT_WARNING_S


# -- what to say ----------------------------------------------------------------------

def phrase_for(announcement: Announcement, lang: str, *, withheld_pin: bool = False) -> list[str]:
    """The prompt names that say ``announcement`` to the caller, in ``lang``."""
    say = announcement.say
    minutes = announcement.minutes
    if minutes is not None:
        minutes = max(0, min(int(minutes), phrases.MAX_NUMBER))
    if say is Say.MINUTES:
        names: list[str] = []
        if announcement.offer_minutes is not None and announcement.offer_per_minute is not None:
            offer_minutes = max(1, min(int(announcement.offer_minutes), phrases.MAX_NUMBER))
            names += phrases.first_caller_offer(offer_minutes, Decimal(str(announcement.offer_per_minute)), lang)
        elif announcement.per_minute is not None and announcement.caller_class in ("landline", "mobile"):
            names += phrases.tariff(Decimal(str(announcement.per_minute)), announcement.caller_class, lang)
        if minutes is not None:
            names += phrases.remaining_minutes(minutes, lang)
        return names
    if say is Say.NO_CREDIT:
        return phrases.no_credit(lang)
    if say is Say.WITHHELD:
        return phrases.withheld(lang, withheld_pin)
    if say is Say.WARNING:
        return phrases.warning(lang, left_s=_warning_left_s(announcement))
    if say is Say.TOPPED_UP:
        return ["topped_up"] if minutes is None else phrases.topped_up(lang, minutes)
    if say is Say.USED_UP:
        return phrases.credit_used_up(lang)
    if say is Say.FREE_MINUTES_OVER:
        return phrases.free_minutes_over(lang)
    if say is Say.PIN_WRONG:
        return phrases.pin_wrong(lang)
    if say is Say.PIN_LOCKED:
        return phrases.pin_locked(lang)
    if say is Say.NO_AGENT:
        return phrases.no_agent(lang)
    raise ValueError(f"nothing to say for {say!r}")


def agent_phrase_for(announcement: Announcement, lang: str, *, withheld_pin: bool = False) -> list[str] | None:
    """The prompt names the agent hears for ``announcement``: the warning's short words (None: the warning
    tone, ``agent_tone``), else what the caller hears."""
    if announcement.say is not Say.WARNING:
        return phrase_for(announcement, lang, withheld_pin=withheld_pin)
    return None if announcement.agent_tone else phrases.agent_warning(lang, left_s=_warning_left_s(announcement))


# -- what the profiles load -----------------------------------------------------------------

def prompt_sets(config) -> set[tuple[str, str]]:
    """The (language, prompts_dir) of every profile of a :class:`b2bua.node.config.Config`."""
    return {(p.language, p.prompts_dir) for p in config.profiles.values()}


def ringback_files(config) -> set[str]:
    """The music files (absolute paths) the profiles of a :class:`b2bua.node.config.Config` name as ringback."""
    return {p.ringback for p in config.profiles.values() if p.ringback not in (*RINGBACK_CADENCES, NO_RINGBACK)}


# -- the factory ------------------------------------------------------------------------

class CallMediaFactory:
    """Makes each call's :class:`RelayCallMedia` on one media engine (:mod:`media.engine`): the relay and the
    player in this process (:class:`media.engine.LocalEngine`) or in media workers (:mod:`media.workers`)."""

    def __init__(self, reactor, engine: MediaEngine, *,
                 refusal_ports_percent: Callable[[], int] = lambda: 100) -> None:
        self.reactor = reactor          # IReactorTime: one callLater, for news that must not interrupt the caller
        self.engine = engine
        #: the share of the port range's pairs that calls speaking only a refusal may hold (read at each use,
        #: so that a reload applies at once)
        self.refusal_ports_percent = refusal_ports_percent
        #: the calls holding their port pair to speak a refusal (see :meth:`RelayCallMedia.hold_for_refusal`)
        self.refusing: set[RelayCallMedia] = set()
        #: exceptions out of a call's handlers of dead media and DTMF, caught (and logged) so that the relay
        #: goes on for the other calls
        self.failed_handlers = 0

    @classmethod
    def from_config(cls, reactor, config, *, clock=None, preload: bool = True,
                    refusal_ports_percent: Callable[[], int] | None = None,
                    engine: MediaEngine | None = None) -> "CallMediaFactory":
        """The app's factory: on ``engine``, else a :class:`LocalEngine` with a Relay from ``config.media`` (leg A
        may latch within the trusted carriers), a Player, and the prompts of every profile's (language,
        prompts_dir) and its ringback music, preloaded.  ``refusal_ports_percent`` reads the share for refusals
        from the config in force (default: this ``config``'s ``[admission] refusal_ports_percent``)."""
        clock = clock if clock is not None else reactor
        if engine is None:
            m = config.media
            relay = Relay(reactor, m.address, m.rtp_port_min, m.rtp_port_max, m.silence_timeout_s,
                          clock=clock, latch_networks=tuple(config.trusted_carriers))
            engine = LocalEngine(relay, Player(clock))
            if preload:
                engine.load_prompts(prompt_sets(config), ringback_files(config))
        if refusal_ports_percent is None:
            percent = config.admission.refusal_ports_percent
            refusal_ports_percent = lambda: percent       # noqa: E731
        return cls(clock, engine, refusal_ports_percent=refusal_ports_percent)

    def reload_prompts(self, config) -> int:
        """SIGHUP: the prompts of the new config's profiles, operators' folders read again (see
        :meth:`media.sounds.PromptLibraries.refresh`), and their ringback music files; raises PromptError, and
        keeps the old prompts and music, on a bad file."""
        return self.engine.reload_prompts(prompt_sets(config), ringback_files(config))

    def for_call(self, call_id: str, profile_language: str, prompts_dir: str = "", *,
                 on_dead: Callable[[str], object] = lambda reason: None,
                 on_dtmf: Callable[[str], object] = lambda digit: None,
                 withheld_pin: bool = False, ringback: str = NO_RINGBACK) -> "RelayCallMedia":
        """A new call's media with the carrier leg's port pair bound (the agent leg's is bound when an
        agent is rung: :meth:`RelayCallMedia.offer_for_b`).  ``ringback`` is the profile's setting ("de",
        "us", "uk", a music file's path, "none").  Raises :class:`MediaRefused` (503) when no pair is free."""
        return RelayCallMedia(self, call_id, profile_language, prompts_dir, on_dead, on_dtmf, withheld_pin,
                              ringback=ringback)

    def hold_for_refusal(self, media: "RelayCallMedia") -> bool:
        """Whether ``media`` may keep its pair to speak a refusal: the calls doing so hold less than
        ``refusal_ports_percent`` of the range's pairs.  A flood of callers without credit (or without a
        usable number) then leaves the rest of the range to the calls that pay."""
        limit = self.engine.port_pairs * self.refusal_ports_percent() // 100
        if media in self.refusing:
            return True
        if len(self.refusing) >= limit:
            return False
        self.refusing.add(media)
        return True

    def close(self) -> None:
        """Close every call's media and the relay's sockets (at shutdown)."""
        self.engine.close()


# -- one call ----------------------------------------------------------------------------

def _refused(exc: SdpError, status: int | None = None) -> MediaRefused:
    """The :class:`MediaRefused` for an SDP error: its status (or ``status``), reason and warn-code."""
    return MediaRefused(status or exc.status, str(exc), exc.warn_code)


def _parse(body: bytes) -> SessionDescription:
    try:
        return parse_sdp(body)
    except SdpError as exc:
        raise _refused(exc) from None


def _offered(sd: SessionDescription, index: int) -> tuple[tuple[str, ...], bool]:
    """The codecs we relay that media section ``index`` lists (its order), and whether it has telephone-event."""
    return offered_codecs(sd.media[index])


class RelayCallMedia:
    """One call's anchored media; implements :class:`b2bua.callports.CallMedia` (and re-INVITEs, late offers).

    Made with the carrier leg's port pair bound; raises :class:`MediaRefused` (503) when none is free.
    """

    def __init__(self, factory: CallMediaFactory, call_id: str, lang: str, prompts_dir: str,
                 on_dead: Callable[[str], object], on_dtmf: Callable[[str], object], withheld_pin: bool, *,
                 ringback: str = NO_RINGBACK) -> None:
        try:
            self.session: EngineSession = factory.engine.open_session(
                call_id, lang, prompts_dir, on_silence=self._silence, on_dtmf=self._dtmf, on_failed=self._failed)
        except PortsExhausted as exc:
            raise MediaRefused(503, f"no RTP ports free: {exc}") from None
        self.local_a = LocalSdp(factory.engine.address, self.session.a_port)
        self.local_b: LocalSdp | None = None      # bound when an agent is rung (offer_for_b)
        self.factory = factory
        self.call_id = call_id
        self.lang = lang
        self.withheld_pin = withheld_pin
        self._on_dead = on_dead
        self._on_dtmf = on_dtmf
        self.closed = False
        self.dead_reason: str | None = None
        #: when the leg that went silent was last heard (its last RTP, or its setup), in clock seconds
        self._silent_since_s: float | None = None
        self.a: Negotiated | None = None          # what leg a agreed (None before)
        self.b: Negotiated | None = None
        self._a_codecs: tuple[str, ...] = AUDIO_CODECS
        self._a_events = True
        self._a_last: tuple[bytes, bytes] | None = None     # (their offer, our answer): a repeat gets the same
        self._a_our_offer: SessionDescription | None = None  # late offer / offerless re-INVITE, awaiting the ACK
        self._a_late: bytes | None = None                    # our late offer's body
        self._b_our_offer: SessionDescription | None = None
        self._b_last_answer: bytes | None = None
        self._key_down = False
        #: what plays now; None while nothing does (a held call mostly: an empty set was 216 B of it)
        self._playbacks: set | None = None
        #: the profile's ringback setting (see :meth:`CallMediaFactory.for_call`), and its playback while it plays
        self.ringback = ringback
        self._ringback = None
        #: a leg's last offer we answered, as (session id, version): the same again is a session refresh
        self._origins: dict[str, tuple[str, int]] = {}
        #: (side, offer, parsed, AudioOffer, our offer to the other leg) while the other leg decides
        self._modify: tuple[str, bytes, SessionDescription, AudioOffer, SessionDescription] | None = None

    def hold_for_refusal(self) -> bool:
        """See :meth:`b2bua.callports.CallMedia.hold_for_refusal` (the factory keeps the share)."""
        return self.factory.hold_for_refusal(self)

    @property
    def ports(self) -> tuple[int, int, int, int]:
        """Our four ports: leg a RTP/RTCP, leg b RTP/RTCP."""
        s = self.session
        return (s.a_port, s.a_rtcp_port, s.b_port, s.b_rtcp_port)

    def _check_open(self) -> None:
        if self.closed:
            raise MediaRefused(500, "the call's media is closed")

    # -- SDP, leg a (the carrier) ------------------------------------------------------

    def check_offer(self, offer: bytes | None) -> None:
        """Raise :class:`MediaRefused` (400/488) for an offer we could not answer; changes nothing but what
        the agent is offered when it is rung before the carrier is answered (the carrier's law first, its
        telephone-event or none)."""
        if offer is None:
            return
        sd = _parse(offer)
        try:
            check_offer(sd)
        except SdpError as exc:
            raise _refused(exc) from None
        wanted = audio_offer(sd)
        self._a_codecs, self._a_events = wanted.codecs, wanted.events

    def answer_for_a(self, offer: bytes | None) -> bytes:
        """Answer the carrier's INVITE offer (leg a now sends and receives); no offer: our late offer."""
        self._check_open()
        if offer is None:
            if self._a_late is None:
                self._a_our_offer = make_offer(self.local_a)
                self._a_late = write_sdp(self._a_our_offer)
            return self._a_late         # the same body again (183 then 200)
        if self._a_last is not None and self._a_last[0] == offer:
            return self._a_last[1]          # early media then 200: the same answer, latching kept
        return self._answer_a(offer)

    def reoffer_from_a(self, offer: bytes | None) -> bytes:
        """A re-INVITE from the carrier (hold, resume, codec or address change): our answer for leg a.

        Without SDP (a session refresh) we offer what we have now, and the answer comes in the ACK
        (:meth:`a_acked`).  Raises :class:`MediaRefused` (400/488): the carrier gets that answer and
        the call keeps its media as it was.
        """
        self._check_open()
        if offer is None:
            self._a_our_offer = self._our_offer(self.local_a, self.a, self._a_codecs, self._a_events)
            return write_sdp(self._a_our_offer)
        return self._answer_a(offer)

    def _answer_a(self, offer: bytes) -> bytes:
        sd = _parse(offer)
        try:
            ours, negotiated = answer_offer(sd, self.local_a, prefer=self._prefer_for_a())
        except SdpError as exc:
            raise _refused(exc) from None
        self._a_codecs, self._a_events = _offered(sd, negotiated.media_index)
        self._configure("a", negotiated, sd)
        body = write_sdp(ours)
        self._a_last = (offer, body)
        self._a_our_offer = None
        return body

    def a_acked(self, answer: bytes | None) -> None:
        """The carrier's answer in the ACK, to our late offer; one we cannot use ends the call (on_dead)."""
        if self.closed or self._a_our_offer is None:
            return
        offer, self._a_our_offer = self._a_our_offer, None
        self._accept("a", offer, answer)

    def _prefer_for_b(self) -> str | None:
        # the law leg a uses (no transcoding when the agent takes it); before leg a is answered, the law
        # its answer will take from the carrier's offer
        return self.a.codec if self.a is not None else chosen_codec(self._a_codecs, self._prefer_for_a())

    def _prefer_for_a(self) -> str | None:
        # keep what leg a has (no needless codec switch); else what leg b uses (no transcoding)
        return self.a.codec if self.a is not None else (self.b.codec if self.b is not None else None)

    # -- SDP, leg b (the agent) -----------------------------------------------------------

    def offer_for_b(self) -> bytes:
        """Our offer to the agent: leg b's port, both G.711 laws (the carrier's first), and telephone-event
        when the carrier offered it.  An agent answering with the other law gets its own law, transcoded.

        Leg b's port pair is bound here, at the first agent; raises :class:`MediaRefused` (503) when none
        is free."""
        self._check_open()
        if self.local_b is None:
            try:
                port = self.session.bind_b()
            except PortsExhausted as exc:
                raise MediaRefused(503, f"no RTP ports free: {exc}") from None
            self.local_b = LocalSdp(self.factory.engine.address, port)
        self._b_our_offer = make_offer(self.local_b, prefer=self._prefer_for_b(), codecs=AUDIO_CODECS,
                                       events=self._a_events)
        self._b_last_answer = None
        return write_sdp(self._b_our_offer)

    def b_answered(self, answer: bytes | None) -> None:
        """The agent's SDP answer: leg b configured, audio relayed both ways; unusable: on_dead("media_refused")."""
        if self.closed or self._b_our_offer is None:
            return
        if answer is not None and answer == self._b_last_answer:
            return          # a retransmitted 200: keep the latched address
        self._b_last_answer = answer
        self._accept("b", self._b_our_offer, answer)

    def reoffer_from_b(self, offer: bytes | None) -> bytes:
        """A re-INVITE from the agent: our answer for leg b (see :meth:`reoffer_from_a`)."""
        self._check_open()
        if offer is None:
            self._b_our_offer = self._our_offer(self.local_b, self.b, self._a_codecs, self._a_events)
            self._b_last_answer = None
            return write_sdp(self._b_our_offer)
        sd = _parse(offer)
        prefer = self.b.codec if self.b is not None else (self.a.codec if self.a is not None else None)
        try:
            ours, negotiated = answer_offer(sd, self.local_b, prefer=prefer)
        except SdpError as exc:
            raise _refused(exc) from None
        self._configure("b", negotiated, sd)
        return write_sdp(ours)

    # -- a media change one leg asks for and the other must agree to (hold, resume, codec) -------

    def modify_offer(self, side: str, offer: bytes | None) -> bytes | None:
        """A re-INVITE/UPDATE offer from leg ``side`` ("a" or "b"): our offer for the OTHER leg, or None.

        None means the other leg would see no change, and the asking leg is answered on its own
        (:meth:`reoffer_from_a` / :meth:`reoffer_from_b`): no SDP, the same ``o=`` version (a session
        refresh), or only the leg's own address or port changed (our relay follows it).  A new
        direction (hold, resume) or another codec choice gives our offer for the other leg from our
        own address: the asking leg's direction, and both G.711 laws with the one it chose first (only
        the other leg's codec in use when only the direction changed): an other leg that cannot follow
        keeps its law, and the relay transcodes.  Nothing is configured until
        :meth:`modify_answer`.  Raises :class:`MediaRefused` for SDP we cannot parse or relay.
        """
        self._check_open()
        current, other = (self.a, self.b) if side == "a" else (self.b, self.a)
        if offer is None or current is None or other is None:
            return None
        sd = _parse(offer)
        wanted = audio_offer(sd)
        if wanted is None:
            try:
                check_offer(sd)         # raises the reason and warn-code
            except SdpError as exc:
                raise _refused(exc) from None
        origin = (sd.origin.session_id, sd.origin.version)
        if origin == self._origins.get(side) or (
                wanted.direction == current.direction and wanted.codecs[0] == current.codec):
            return None
        if wanted.codecs[0] == current.codec:      # a hold or a resume: the other leg keeps its codec
            prefer, codecs, events = other.codec, (other.codec,), other.event_payload_type is not None
        else:       # both laws, the new one first: the other leg follows it, or keeps its own (transcoded)
            prefer, codecs, events = wanted.codecs[0], AUDIO_CODECS, wanted.events
        local = self.local_b if side == "a" else self.local_a
        ours = make_offer(local, prefer=prefer, direction=wanted.direction, codecs=codecs, events=events)
        self._modify = (side, offer, sd, wanted, ours)
        return write_sdp(ours)

    def modify_answer(self, side: str, answer: bytes | None) -> bytes:
        """The other leg's 2xx answer to :meth:`modify_offer`'s offer: both legs switched, our answer for ``side``.

        Our answer mirrors the other leg's (its direction, within what the asking leg offered; its
        codec when offered, so nothing is transcoded).  Raises :class:`MediaRefused` (488) when that
        answer is missing or unusable: then neither leg changes.
        """
        self._check_open()
        pending, self._modify = self._modify, None
        if pending is None or pending[0] != side:
            raise MediaRefused(500, "no media change is pending on this leg")
        _, offer, sd, wanted, ours = pending
        if answer is None:
            raise MediaRefused(488, "the other leg answered without SDP")
        try:
            theirs = _parse(answer)
            other = accept_answer(ours, theirs)
            direction = answer_direction(wanted.direction, other.direction)
            local = self.local_a if side == "a" else self.local_b
            body, negotiated = answer_offer(sd, local, prefer=other.codec, direction=direction)
        except SdpError as exc:
            raise _refused(exc, 488) from None
        self._configure("b" if side == "a" else "a", other, theirs)
        self._configure(side, negotiated, sd)
        answer_body = write_sdp(body)
        if side == "a":
            self._a_codecs, self._a_events = wanted.codecs, wanted.events
            self._a_last = (offer, answer_body)
        return answer_body

    def modify_dropped(self, side: str) -> None:
        """The other leg refused or never answered: the pending change is forgotten, both legs as they were."""
        if self._modify is not None and self._modify[0] == side:
            self._modify = None

    # -- SDP helpers ------------------------------------------------------------------------

    @staticmethod
    def _our_offer(local: LocalSdp, current: Negotiated | None, codecs: tuple[str, ...],
                   events: bool) -> SessionDescription:
        """Our offer on a leg: before it negotiated, ``codecs``; after, just what is in use (so an offer that
        only refreshes the session says what we said before, and keeps the o= version)."""
        if current is not None:
            return make_offer(local, codecs=(current.codec,), events=current.event_payload_type is not None)
        return make_offer(local, codecs=codecs or AUDIO_CODECS, events=events)

    def _accept(self, leg: str, offer: SessionDescription, answer: bytes | None) -> None:
        try:
            if answer is None:
                raise MediaRefused(488, "no SDP answer to our offer")
            theirs = _parse(answer)
            negotiated = accept_answer(offer, theirs)
        except (SdpError, MediaRefused) as exc:
            log.warn("call {call_id}: leg {leg} answered with SDP we cannot use: {reason}", call_id=self.call_id, leg=leg,
                     reason=str(exc))
            self._dead("media_refused", later=True)
            return
        self._configure(leg, negotiated, theirs)

    def _configure(self, leg: str, negotiated: Negotiated, theirs: SessionDescription | None = None) -> None:
        """Switch leg ``leg`` to what it agreed; ``theirs`` (its SDP) names the o= a refresh repeats."""
        self.session.configure_leg(leg, negotiated)
        setattr(self, leg, negotiated)
        if theirs is not None:
            self._origins[leg] = (theirs.origin.session_id, theirs.origin.version)

    # -- announcements -------------------------------------------------------------------------

    def announce(self, announcement: Announcement) -> Deferred:
        """Speak ``announcement``; fires True when it was all played, False when stopped (or nothing to play).

        The caller hears the phrase in the profile's language; the agent (once its leg exists) the
        same phrase, or for the warning its shorter words (or the warning tone: ``agent_tone``).
        ``mixed`` plays over the conversation, else the relayed audio is replaced while it plays.  The
        final "credit used up" (or "free minutes over") first stops whatever is still playing.  The engine
        is told what to say by name (:class:`media.sounds.Sound`); it reads the frames from its libraries.
        """
        if self.closed:
            return succeed(False)
        mode = MIX if announcement.mixed else REPLACE
        try:
            names = phrase_for(announcement, self.lang, withheld_pin=self.withheld_pin)
            parts = []
            if announcement.to_caller and names:
                parts.append(PlayPart("a", Sound(PROMPTS, tuple(names)), mode))
            if announcement.to_agent and self.b is not None:
                agent = self._agent_sound(announcement, names)
                if agent is not None:
                    parts.append(PlayPart("b", agent, mode))
            if not parts:
                return succeed(False)
            if announcement.say in (Say.USED_UP, Say.FREE_MINUTES_OVER):
                self.stop()
            playback = self.session.play(parts)
        except (PromptError, ValueError) as exc:
            log.error("call {call_id}: cannot say {what}: {reason}", call_id=self.call_id, what=announcement.say.value,
                      reason=str(exc))
            return succeed(False)
        self._playing(playback)
        return playback.done

    def _agent_sound(self, announcement: Announcement, names: list[str]) -> Sound | None:
        """What the agent hears: the caller's words, its own shorter words, or the warning tone."""
        agent_names = agent_phrase_for(announcement, self.lang, withheld_pin=self.withheld_pin)
        if agent_names is None:
            return Sound(TONE, name="warning")
        return Sound(PROMPTS, tuple(agent_names)) if agent_names else None

    def _playing(self, playback) -> None:
        if self._playbacks is None:
            self._playbacks = set()
        self._playbacks.add(playback)
        playback.done.addBoth(self._played, playback)

    def _played(self, result, playback):
        self._playbacks.discard(playback)
        if not self._playbacks:
            self._playbacks = None
        if playback is self._ringback:
            self._ringback = None
        return result

    def start_ringback(self) -> str | None:
        """See :meth:`b2bua.callports.CallMedia.start_ringback`: the profile's ringback looped into leg a
        (replacing anything relayed to it) until stopped; what plays, or None.  A music file that cannot be
        read is logged and the caller hears the silence of before."""
        if self.closed or self.a is None or self._ringback is not None:
            return None
        what = ringback_name(self.ringback)
        if what is None:
            return None
        try:
            playback = self.session.play([PlayPart("a", Sound(RINGBACK, name=self.ringback), REPLACE)], loop=True)
        except (PromptError, ValueError) as exc:
            log.error("call {call_id}: cannot play the ringback: {reason}", call_id=self.call_id, reason=str(exc))
            return None
        self._ringback = playback
        self._playing(playback)
        return what

    def stop_ringback(self) -> None:
        """See :meth:`b2bua.callports.CallMedia.stop_ringback`."""
        if self._ringback is not None:
            self._ringback.stop()

    def stop(self) -> None:
        """Stop anything being said on this call (its Deferreds fire False)."""
        for playback in list(self._playbacks or ()):
            playback.stop()
        self.session.stop()

    def close(self) -> None:
        """Stop, send RTCP BYE, free the four ports.  Idempotent."""
        if self.closed:
            return
        self.stop()
        self.closed = True
        self.factory.refusing.discard(self)
        self.session.close()

    # -- what the relay reports ---------------------------------------------------------------

    def _silence(self, leg_name: str, last_heard_s: float) -> None:
        log.info("call {call_id}: leg {leg} sent no media for {silence_s} s", call_id=self.call_id, leg=leg_name,
                 silence_s=self.factory.engine.silence_timeout_s)
        self._silent_since_s = last_heard_s
        self._dead("media_timeout")

    def _failed(self, reason: str) -> None:
        """The engine lost this call's media (its media worker died): the call ends now, billed to now."""
        self._dead(reason)

    def dead_since_ms(self) -> int | None:
        """See :meth:`b2bua.callports.CallMedia.dead_since_ms`: the silent leg's last packet (or its setup)."""
        return None if self._silent_since_s is None else round(self._silent_since_s * 1000)

    def _dead(self, reason: str, later: bool = False) -> None:
        if self.closed or self.dead_reason is not None:
            return
        self.dead_reason = reason
        if later:       # not inside the controller's own transition
            self.factory.reactor.callLater(0, self._report_dead, reason)
        else:
            self._report_dead(reason)

    def _report_dead(self, reason: str) -> None:
        if not self.closed:
            self._tell(self._on_dead, reason)

    def _tell(self, callback: Callable[[str], object], value: str) -> None:
        # called from the relay's timer and socket reader: a failing owner must not stop other calls' media
        try:
            callback(value)
        except Exception:
            self.factory.failed_handlers += 1
            log.failure("call {call_id}: the call's handler of {value!r} failed", call_id=self.call_id, value=value,
                        level=LogLevel.error)

    def _dtmf(self, leg_name: str, digit: str, end: bool) -> None:
        """The relay's start and end of each event: the caller's key, once (at its start, or its end if
        the start was lost)."""
        if leg_name != "a" or self.closed:
            return
        if end and self._key_down:
            self._key_down = False
            return
        self._key_down = not end
        self._tell(self._on_dtmf, digit)
