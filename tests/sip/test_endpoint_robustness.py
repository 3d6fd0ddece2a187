"""Nothing a peer sends makes the endpoint raise or fail inside: random bytes and mutated messages."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sip.test_endpoint_support import CARRIER, endpoint, request, response_to

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
