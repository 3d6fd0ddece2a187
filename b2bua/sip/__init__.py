"""The SIP core, sans-I/O: message codec, URIs and headers, framing, request checks, Warning and Reason values,
and the transport seam."""

from b2bua.sip.causes import Reason, warning_value
from b2bua.sip.checks import allow_value, answer_parse_error, check_request, check_response
from b2bua.sip.codec import make_response, parse_message, reason_phrase, serialise
from b2bua.sip.errors import FramingError, SipParseError
from b2bua.sip.framing import KEEPALIVE, PONG, StreamFramer
from b2bua.sip.headers import CSeq, Headers, NameAddr, Via
from b2bua.sip.message import SipRequest, SipResponse
from b2bua.sip.peer import Outgoing, Peer
from b2bua.sip.uri import AbsoluteUri, SipUri, TelUri, parse_uri

__all__ = [
    "KEEPALIVE",
    "PONG",
    "Reason",
    "StreamFramer",
    "allow_value",
    "answer_parse_error",
    "check_request",
    "check_response",
    "AbsoluteUri",
    "CSeq",
    "FramingError",
    "Headers",
    "NameAddr",
    "Outgoing",
    "Peer",
    "SipParseError",
    "SipRequest",
    "SipResponse",
    "SipUri",
    "TelUri",
    "Via",
    "make_response",
    "parse_message",
    "parse_uri",
    "reason_phrase",
    "serialise",
    "warning_value",
]
