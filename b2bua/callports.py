"""The call's seams: what it says, and the interfaces of its media and legs as the call uses them.

:class:`Say` and :class:`Announcement` are the words a call speaks (media
turns them into phrases in the profile's language); :class:`MediaRefused` is
media's refusal of an SDP with the SIP answer it stands for; :class:`CallMedia`,
:class:`InboundLeg` and :class:`OutboundLeg` are the whole interfaces the call
(:mod:`b2bua.call`) and its relay (:mod:`b2bua.modifyrelay`) use, implemented by
``b2bua.callmedia`` and ``b2bua.legs`` and by the test doubles of
``tests/support/callfakes.py``.

Pinned by ``tests/b2bua/test_interfaces.py``: the real thing and each double
provide every member, by the same parameter names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from twisted.internet.defer import Deferred

from .identity import CallerIdentity
from .sip.causes import Reason

if TYPE_CHECKING:
    from .call import Call


class Say(enum.Enum):
    """What the caller (or agent) is told; media turns it into phrases in the profile's language."""

    MINUTES = "minutes"            # the tariff (when the profile says) and the minutes the credit buys
    NO_CREDIT = "no_credit"        # no credit, and where to top up
    WITHHELD = "withheld"          # number withheld: call with it shown (or type the PIN)
    WARNING = "warning"            # the credit lasts so much longer (the agent hears shorter words, or a tone)
    TOPPED_UP = "topped_up"        # the credit was topped up during the call
    USED_UP = "used_up"            # the credit is used up: goodbye
    PIN_WRONG = "pin_wrong"        # the PIN typed names no account
    PIN_LOCKED = "pin_locked"      # too many wrong PINs from this source (or for this account): try later
    FREE_MINUTES_OVER = "free_minutes_over"  # a first caller's free minutes are over: where to top up, goodbye
    NO_AGENT = "no_agent"          # no agent took the call: nobody can take it now, and it cost nothing


@dataclass(frozen=True)
class Announcement:
    """One thing to say on a call: to whom, and the facts it needs."""

    say: Say
    to_caller: bool = True
    to_agent: bool = False
    #: mixed over the conversation (warning) instead of replacing it
    mixed: bool = False
    minutes: int | None = None
    per_minute: object | None = None      # Decimal tariff, when the profile announces it
    caller_class: str | None = None
    #: a first caller's offer, said instead of the tariff: its whole minutes and their Decimal price (0: free)
    offer_minutes: int | None = None
    offer_per_minute: object | None = None
    #: the warning's time left, in seconds (said as ``media.phrases.time_left`` rounds it)
    seconds: int | None = None
    #: the warning reaches the agent as the three-beep tone instead of its short words (``agent_warning = "tone"``)
    agent_tone: bool = False


class MediaRefused(Exception):
    """Media cannot take a peer's SDP; ``status`` is the SIP answer (400, 488, 503), ``reason`` why.

    ``warn_code`` is the RFC 3261 §20.43 warn-code for the Warning header of a 488 (302, 304, 305:
    :mod:`media.sdp`); None leaves the leg's default (305)."""

    def __init__(self, status: int, reason: str, warn_code: int | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.warn_code = warn_code


class CallMedia(Protocol):
    """The call's anchored media (``b2bua.callmedia`` builds it on ``media/``)."""

    def check_offer(self, offer: bytes | None) -> None:
        """Raise :class:`MediaRefused` (400, 488) for a carrier offer we could not answer; changes nothing."""

    def hold_for_refusal(self) -> bool:
        """Whether this call may keep its port pair to speak a refusal (the node's share for refusals is
        not used up); True counts it in that share until :meth:`close`."""

    def answer_for_a(self, offer: bytes | None) -> bytes:
        """Our SDP for the carrier, answering its offer."""

    def offer_for_b(self) -> bytes:
        """Our SDP offer for the agent."""

    def b_answered(self, answer: bytes | None) -> None:
        """The agent's SDP answer: start relaying between the legs."""

    def announce(self, announcement: Announcement) -> Deferred:
        """Speak into the call; fires when it has been said (or was stopped)."""

    def stop(self) -> None:
        """Stop anything being said."""

    def start_ringback(self) -> str | None:
        """Play the profile's ringback (a tone in the country's cadence, or the operator's music) to the
        caller, looped until :meth:`stop_ringback` or :meth:`stop`; answers what plays ("de", "us", "uk", the
        file's name), or None when nothing does (none configured, or the caller's leg carries no audio yet)."""

    def stop_ringback(self) -> None:
        """Stop the ringback at once (an agent answered, or the hunt ended); nothing when none plays."""

    def close(self) -> None:
        """Free the ports: the call is over."""

    def dead_since_ms(self) -> int | None:
        """When the leg whose silence ended the call ("media_timeout") was last heard from, in ms of the
        clock; None while no leg went silent.  Billing ends there, not at the timeout."""

    def a_acked(self, answer: bytes | None) -> None:
        """The carrier's SDP answer in its ACK, to our late offer (an INVITE without SDP)."""

    def reoffer_from_a(self, offer: bytes | None) -> bytes:
        """A re-INVITE/UPDATE of the carrier answered on its own leg: our answer (raises MediaRefused)."""

    def reoffer_from_b(self, offer: bytes | None) -> bytes:
        """The same for the agent's leg."""

    def modify_offer(self, side: str, offer: bytes | None) -> bytes | None:
        """Leg ``side``'s ("a", "b") new offer: our offer for the other leg, or None when that leg would see
        no change (the asking leg is then answered on its own); raises MediaRefused."""

    def modify_answer(self, side: str, answer: bytes | None) -> bytes:
        """The other leg's answer to :meth:`modify_offer`'s offer: both legs switched, our answer for ``side``;
        raises MediaRefused (neither leg changes)."""

    def modify_dropped(self, side: str) -> None:
        """The other leg refused the change or never answered: nothing switches."""


class ModifyingLeg(Protocol):
    """What a bridged leg offers for relaying re-INVITE/UPDATE (``b2bua.legs``)."""

    #: our SDP last sent on this leg (a re-INVITE without an offer gets it back as ours)
    local_sdp: bytes | None

    def peer_allows(self, method: str) -> bool: ...
    def modify(self, method: str, body: bytes) -> str | None: ...
    def answer_modify(self, method: str, status: int, body: bytes | None = None,
                      headers: list[tuple[str, str]] | tuple = (), warn_code: int | None = None) -> None: ...


class InboundLeg(ModifyingLeg, Protocol):
    """The carrier's leg, as the controller sees it."""

    offer: bytes | None
    answered: bool
    ended: bool
    final_status: int | None

    def provisional(self, status: int, sdp: bytes | None = None) -> None: ...
    def answer(self, sdp: bytes) -> None: ...
    def reject(self, status: int, headers: list[tuple[str, str]] | None = None,
               warn_code: int | None = None) -> None: ...
    def bye(self, reason: Reason | None = None) -> None: ...


class OutboundLeg(ModifyingLeg, Protocol):
    """One agent's leg."""

    agent: str
    ended: bool
    final_status: int | None

    def cancel(self, reason: Reason | None = None) -> None: ...
    def bye(self, reason: Reason | None = None) -> None: ...


#: dialer(agent URI, caller identity, our SDP offer, the call) -> the new leg
Dialer = Callable[[str, CallerIdentity, bytes, "Call"], OutboundLeg]
