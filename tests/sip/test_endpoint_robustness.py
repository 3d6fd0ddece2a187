"""Nothing a peer sends makes the endpoint raise or fail inside: random bytes and mutated messages."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b2bua.sip.peer import Peer
from tests.sip.fuzz import mutations
from tests.support.sip_endpoint import CARRIER, endpoint, request, response_to

SEEDS = [
    request("INVITE"), request("BYE", to_tag="x", cseq=2), request("CANCEL"), request("ACK", to_tag="y"),
    request("OPTIONS", branch=None, rport=True), request("INVITE", body=b"v=0\r\n"),
    response_to(request("INVITE"), 180, to_tag="z"),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_never_raise_nor_hit_an_internal_error(data):
    """Random bytes: receive() returns, and no internal error was swallowed (every path is a deliberate one)."""
    ep = endpoint()
    ep.receive(data, CARRIER, 0.0)
    ep.handle_timer(100.0)
    assert ep.last_error is None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
       st.integers(0, 10_000), st.integers(0, 40))
def test_mutated_messages_are_answered_or_dropped_without_internal_errors(seed, flips, cut_at, cut_len):
    """Messages with bytes flipped and a slice cut out are answered or dropped; no internal error, timers run."""
    data = bytearray(seed)
    for pos, value in flips:
        data[pos % len(data)] = value
    cut = cut_at % len(data)
    data = bytes(data[:cut] + data[cut + cut_len:])
    ep = endpoint()
    ep.receive(request("INVITE"), CARRIER, 0.0)  # something live to match against
    ep.receive(data, CARRIER, 0.1)
    ep.take_outgoing()
    ep.handle_timer(100.0)
    assert ep.last_error is None, repr(ep.last_error)


# ---- the class of inputs that once ended in an internal error, and what each gets now ----------
def _with(method: str, *lines: str, drop: tuple[str, ...] = ()) -> bytes:
    """``request(method)`` with header lines put after the request line (and lines starting with ``drop`` left out)."""
    head, _, rest = request(method).partition(b"\r\n")
    kept = b"\r\n".join(line for line in rest.split(b"\r\n") if not line.startswith(tuple(d.encode() for d in drop)))
    return head + b"\r\n" + "".join(f"{line}\r\n" for line in lines).encode() + kept


ANSWERED = [
    # int() refuses more than 4,300 digits: ValueError inside the codec
    (_with("OPTIONS", "Content-Length: " + "9" * 4300, drop=("Content-Length",)), b"400 Bad Content-Length header"),
    (_with("OPTIONS", "Content-Length: 0", "l: " + "0" * 5000), b"400 Conflicting Content-Length headers"),
    (_with("OPTIONS", "Content-Length: \u00b2", drop=("Content-Length",)), b"400 Bad Content-Length header"),
    (_with("OPTIONS", "Max-Forwards: " + "7" * 4400, drop=("Max-Forwards",)), b"400 Bad Max-Forwards header"),
    (_with("OPTIONS", "Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKr;rport=" + "5" * 4400, drop=("Via",)),
     b"400 Bad rport in Via"),
    # a Via line of commas only: IndexError in the transaction layer
    (_with("INVITE", "Via: ,,,,", drop=("Via",)), b"400 Bad Via header"),
    (_with("OPTIONS", "Via:    ,  , ,", drop=("Via",)), b"400 Bad Via header"),
    # a broken header line before the Via used to hide it: dropped with no answer
    (_with("OPTIONS", "Fr\u00f6m: x"), b"400 Bad header name"),
    (_with("OPTIONS", "no colon here"), b"400 Malformed header line"),
    (_with("OPTIONS", "Subject: bare\nLF"), b"400 Bare CR or LF in headers"),
]


@pytest.mark.parametrize("data, status_line", ANSWERED, ids=[s.decode() + f" #{i}" for i, (_, s) in enumerate(ANSWERED)])
def test_malformed_requests_get_their_answer_on_the_wire(data, status_line):
    """Each request of the class that once raised inside (huge numbers, non-ASCII digits, an empty
    Via line) or was dropped (a broken line before the Via) gets exactly one answer, to its source."""
    ep = endpoint()
    ep.receive(data, CARRIER, 0.0)
    out = ep.take_outgoing()
    assert ep.last_error is None, repr(ep.last_error)
    assert [o.data.split(b"\r\n", 1)[0] for o in out] == [b"SIP/2.0 " + status_line]
    assert out[0].peer == CARRIER
    assert b"\r\nCall-ID: call-1@192.0.2.10\r\n" in out[0].data


def test_an_empty_via_line_before_a_real_one_is_passed_over():
    """``Via: ,,,`` above a real Via: the real one is the top Via, stamped and used (INVITE gets 100)."""
    ep = endpoint()
    ep.receive(_with("INVITE", "Via: ,,,", drop=()), Peer("udp", "198.51.100.7", 5062), 0.0)
    out = ep.take_outgoing()
    assert ep.last_error is None, repr(ep.last_error)
    assert out[0].data.startswith(b"SIP/2.0 100 Trying\r\n")
    assert b"branch=z9hG4bKa1;received=198.51.100.7\r\n" in out[0].data


@pytest.mark.parametrize("top", ["Via: ,,,,", "v: ,", "Via: SIP/2.0/UDP h;rport=" + "6" * 4400])
def test_responses_with_an_unusable_via_are_counted_drops(top):
    """A response whose Via is commas only or has an absurd rport is dropped and counted, never raises."""
    ep = endpoint()
    data = ("SIP/2.0 503 Service Unavailable\r\n" + top + "\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\n"
            "Call-ID: x@y\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n").encode()
    ep.receive(data, CARRIER, 0.0)
    assert ep.last_error is None, repr(ep.last_error)
    assert ep.take_outgoing() == []
    assert sum(n for why, n in ep.dropped.items() if why.startswith("bad response")) == 1


FUZZ_COUNT = 3000


def test_fuzzed_torture_messages_are_each_answered_dropped_or_handed_up():
    """3,000 mutations of the RFC 4475/5118 messages (fixed seed), over UDP and TCP, with a client and a
    server transaction live to match: no internal error, and each message is accounted for: something
    sent, a counted drop, or an event for the transaction user."""
    tcp = Peer("tcp", "192.0.2.10", 40000)
    for i, data in enumerate(mutations(seed=4475, count=FUZZ_COUNT)):
        peer = tcp if i % 2 else CARRIER
        ep = endpoint()
        ep.send_request(ep.make_request("INVITE", "sip:agent@192.0.2.20:5070", from_="<sip:a@b>", to="<sip:c@d>"), 0.0)
        ep.receive(request("INVITE"), peer, 0.0)
        ep.take_outgoing()
        ep.take_events()
        ep.receive(data, peer, 0.1)
        accounted = len(ep.take_outgoing()) + sum(ep.dropped.values()) + len(ep.take_events())
        ep.handle_timer(100.0)
        assert ep.last_error is None, f"message {i}: {ep.last_error!r}: {data[:200]!r}"
        assert accounted, f"message {i}: {data[:200]!r}"


def test_an_internal_error_is_a_fault_with_the_messages_call_id(monkeypatch):
    """A bug while handling a parsed request: receive() still returns, the message is dropped and counted, and
    take_faults() hands over one fault naming its Call-ID and carrying the exception (once)."""
    ep = endpoint()

    def broken(*args):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(ep, "_receive_request", broken)
    message = request("INVITE")
    ep.receive(message, CARRIER, 0.0)
    [fault] = ep.take_faults()
    assert fault.why == "internal error: ZeroDivisionError" and isinstance(fault.error, ZeroDivisionError)
    assert fault.call_id in message.decode() and ep.dropped["internal error: ZeroDivisionError"] == 1
    assert ep.take_faults() == []
