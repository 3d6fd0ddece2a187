"""Media for the B2BUA: SDP offer/answer, the RTP relay and its streams, prompts and the player."""

# SDP and the RTP relay (issue 5: sdp, rtp, stream, relay, ports)
from .ports import PortsExhausted
from .relay import Leg, MediaSession, Relay, RelayCounters
from .sdp import (LocalSdp, Negotiated, NotAcceptable, SdpError, accept_answer, answer_offer,
                  make_offer, offer_from, parse_sdp, write_sdp)
from .stream import OutgoingStream

__all__ = [
    "PortsExhausted", "Leg", "MediaSession", "Relay", "RelayCounters",
    "LocalSdp", "Negotiated", "NotAcceptable", "SdpError", "accept_answer", "answer_offer",
    "make_offer", "offer_from", "parse_sdp", "write_sdp", "OutgoingStream",
]
