"""Helpers for the endpoint tests (no tests here): raw SIP bytes, and reading what the endpoint sent."""

from __future__ import annotations

import itertools

from b2bua.sip.codec import parse_message
from b2bua.sip.endpoint import SipEndpoint
from b2bua.sip.peer import Peer

CARRIER = Peer("udp", "192.0.2.10", 5062)
US = ("127.0.0.1", 5060)


def counter_tokens(prefix="t"):
    """A deterministic token source, so tags and branches in tests are predictable."""
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


def endpoint(**kwargs) -> SipEndpoint:
    kwargs.setdefault("local_host", US[0])
    kwargs.setdefault("local_ports", {"udp": US[1], "tcp": US[1]})
    kwargs.setdefault("new_token", counter_tokens())
    return SipEndpoint(**kwargs)


def request(method="INVITE", *, branch="z9hG4bKa1", via_host="192.0.2.10", via_port=5062, rport=False,
            call_id="call-1@192.0.2.10", from_tag="ft1", to_tag=None, cseq=1, cseq_method=None,
            uri="sip:+493012345678@127.0.0.1", body=b"", extra=(), transport="UDP") -> bytes:
    """A request as a carrier would send it."""
    via = f"SIP/2.0/{transport} {via_host}:{via_port}"
    if branch is not None:
        via += f";branch={branch}"
    if rport:
        via += ";rport"
    to = "<sip:+493012345678@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    lines = [f"{method} {uri} SIP/2.0", f"Via: {via}", "Max-Forwards: 70",
             f"From: <sip:+4915112345678@192.0.2.10>;tag={from_tag}", f"To: {to}",
             f"Call-ID: {call_id}", f"CSeq: {cseq} {cseq_method or method}",
             "Contact: <sip:carrier@192.0.2.10:5062>", *extra]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def response_to(req_bytes: bytes, status: int, reason="X", *, to_tag=None, extra=()) -> bytes:
    """A response to a request we sent, built from its bytes as the remote UA would."""
    req = parse_message(req_bytes)
    lines = [f"SIP/2.0 {status} {reason}"]
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for value in req.headers.get_lines(name):
            if name == "To" and to_tag and ";tag=" not in value:
                value += f";tag={to_tag}"
            lines.append(f"{name}: {value}")
    lines += list(extra) + ["Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def sent(ep: SipEndpoint):
    """What the endpoint sent: a list of (parsed message, peer)."""
    return [(parse_message(o.data), o.peer) for o in ep.take_outgoing()]


def statuses(messages):
    return [m.status if hasattr(m, "status") else m.method for m, _ in messages]


def run_timers(ep: SipEndpoint, until: float):
    """Fire every deadline up to ``until``; return [(time, message, peer)] of what was sent."""
    out = []
    while True:
        deadline = ep.next_deadline()
        if deadline is None or deadline > until:
            return out
        ep.handle_timer(deadline)
        out.extend((deadline, m, p) for m, p in sent(ep))
