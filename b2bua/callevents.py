"""Neutral call events: what a leg, media or a timer tells the call, with no SIP left in it.

A leg (:mod:`b2bua.legs`) turns what its peer did on the wire into these (as
sippy's ``CCEvents`` do) and hands them to the call through the driver's one
sink (:class:`b2bua.calldriver.CallDriver`); it never calls the call.  The
call (:mod:`b2bua.call`) turns each into an input of its table
(:mod:`b2bua.callstate`).  Every event names the leg it came from (``leg``),
so that news from an agent the call gave up on is told apart from the
current one's.

Leg events that end the call whatever it was doing carry the reason the call
record gets (:attr:`LegBroken.reason`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .modify import ModifyRequest


@dataclass(frozen=True)
class Ringing:
    """An 18x from the agent (ringing, or early media with its SDP)."""

    leg: object
    status: int


@dataclass(frozen=True)
class Answered:
    """The agent's 2xx to our INVITE, with its SDP (None: none in the 2xx)."""

    leg: object
    sdp: bytes | None


@dataclass(frozen=True)
class Failed:
    """The agent's INVITE ended without a 2xx: its final status, 408 (no answer) or 503 (not sent)."""

    leg: object
    status: int


@dataclass(frozen=True)
class Bye:
    """The peer of ``leg`` hung up (its BYE was answered 200)."""

    leg: object


@dataclass(frozen=True)
class Cancelled:
    """The carrier cancelled its INVITE (the endpoint answered 200 and 487)."""

    leg: object


@dataclass(frozen=True)
class ModifyOffer:
    """The peer's re-INVITE or UPDATE, waiting on ``leg`` for the call's answer."""

    leg: object
    request: ModifyRequest


@dataclass(frozen=True)
class ModifyAnswered:
    """The final answer of ``leg``'s peer to the change relayed to it (408: none came)."""

    leg: object
    status: int
    sdp: bytes | None


@dataclass(frozen=True)
class Acked:
    """The carrier's ACK brought an SDP answer to our late offer (an INVITE that had none)."""

    leg: object
    sdp: bytes


@dataclass(frozen=True)
class LegEnded:
    """``leg`` has nothing left on the wire (its dialog and transactions are over)."""

    leg: object


@dataclass(frozen=True)
class LegBroken:
    """``leg`` can go on no longer, and so neither can the call; ``reason`` is the record's end reason:

    ``session_expired`` (RFC 4028: no refresh came), ``no_ack`` (our 2xx was never ACKed), ``no_prack``
    (RFC 3262: our reliable provisional was never acknowledged), ``refresh_failed`` (our refresh was refused),
    ``modify_timeout`` (no answer to a relayed change in 64*T1), ``dialog_timeout``/``dialog_481``/``dialog_408``
    (a request in the dialog found it gone), ``carrier_transport_failed`` (the caller's connection closed
    before the answer), ``carrier_transaction_gone`` (the carrier's INVITE ended before we could answer it)."""

    leg: object
    reason: str


@dataclass(frozen=True)
class SendFailed:
    """A request we sent in ``leg``'s dialog (BYE, re-INVITE, UPDATE) reached nobody: ``status`` 408 when its
    transaction timed out, 503 when the transport could not carry it (the connection could not be opened, a
    TLS handshake or a write failed, the connection closed before the answer; RFC 3261 §8.1.3.1).  The peer
    is out of reach: a call still up ends, the other side hears our BYE and billing stops now."""

    leg: object
    method: str
    status: int


@dataclass(frozen=True)
class Dtmf:
    """A key pressed: an RFC 4733 event of the caller's (media reports each press once; ``leg`` None), or
    the key of an INFO the peer of ``leg`` sent (:mod:`b2bua.info`)."""

    digit: str
    leg: object = None


@dataclass(frozen=True)
class MediaDead:
    """Media gave up on the call: a leg fell silent (``media_timeout``) or its SDP is unusable."""

    reason: str


@dataclass(frozen=True)
class Abort:
    """End the call now for ``reason`` (the node stopping, no RTP ports for the agent's leg)."""

    reason: str


#: every event a call takes in
CallEvent = (Ringing | Answered | Failed | Bye | Cancelled | ModifyOffer | ModifyAnswered | Acked | LegEnded
             | LegBroken | SendFailed | Dtmf | MediaDead | Abort)
