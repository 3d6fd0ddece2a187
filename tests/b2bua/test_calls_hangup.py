"""The end of a call on the wire: billing stops at the first hang-up, and a vanished carrier's call still ends.

The real manager, legs, SIP endpoints and relay (``tests.support.calls``) on one Clock, with
billing on the in-memory session store at 1 EUR a second in 1/1 increments, charging from the
agent's answer.  A peer that "never answers our BYE" is one whose messages are collected instead
of delivered (``Wire.raw``): our BYE to it is retransmitted until Timer F (32 s).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from b2bua.routing import Router
from billing.profile import Increment
from billing.session import CallBilling
from b2bua.sip.peer import Peer
from tests.billing.test_session_harness import MemorySessionStore
from tests.support.callfakes import billing_profile
from tests.support.calls import AGENT, CALLER, CARRIER, NODE, WireProfile, Wire, bridged_call

#: every test here runs with the call's media in process and behind a media worker (tests/b2bua/conftest.py)
BOTH_ENGINES = True

BALANCE_CENTS = 100_00
CENTS_PER_S = 100


@pytest.fixture
def wire():
    store = MemorySessionStore()
    store.set_balance("demo", CALLER, BALANCE_CENTS)
    wire = Wire()
    wire.billing = CallBilling(store, wire.clock, node_id="n1", lease_s=60)
    wire.store = store
    wire.manager.billing = wire.billing
    profile = WireProfile("demo", billing_profile(landline_per_minute=Decimal("60.00"),
                                                  mobile_per_minute=Decimal("60.00"), increment=Increment(1, 1)),
                          agents=(f"sip:agent@127.0.0.1:{AGENT}",))
    wire.manager.router = Router([profile], "DE")
    yield wire
    wire.close()


def balance(wire) -> int:
    return wire.store.balances[("demo", CALLER)]


def test_the_agent_hangs_up_and_the_carrier_never_answers_our_bye(wire):
    """The agent hangs up after 3 s of talk; the carrier never answers the BYE we send it (retransmitted
    for 32 s): the caller pays 3 s, and the record ends at the agent's hang-up (35 s on the old code)."""
    call = bridged_call(wire)
    wire.raw[CARRIER] = []                      # from now on the carrier hears nothing and answers nothing
    wire.run(3)
    hangup_ms = round(wire.now() * 1000)
    wire.agent.send("BYE")
    assert call.state.value == "closing" and wire.sent(NODE, CARRIER, method="BYE")
    assert balance(wire) == BALANCE_CENTS - 3 * CENTS_PER_S     # settled at the hang-up, not after Timer F
    wire.run(40, step_s=0.5)
    (record,) = wire.records
    assert (record.billed_s, record.charge_cents, record.end_ms) == (3, 3 * CENTS_PER_S, hangup_ms)
    assert record.end_reason == "agent_hangup" and len(wire.sent(NODE, CARRIER, method="BYE")) > 3
    assert balance(wire) == BALANCE_CENTS - 3 * CENTS_PER_S
    assert wire.billing.sessions == () and wire.manager.calls == {}


def test_the_caller_hangs_up_and_the_agent_never_answers_our_bye(wire):
    """The caller hangs up after 5 s; the agent's phone never answers our BYE: 5 s billed, not 37, and the
    record ends at the caller's BYE."""
    call = bridged_call(wire)
    wire.raw[AGENT] = []
    wire.run(5)
    hangup_ms = round(wire.now() * 1000)
    wire.carrier.send("BYE")
    assert call.state.value == "closing" and wire.carrier.finals("BYE")[-1].status == 200
    wire.run(40, step_s=0.5)
    (record,) = wire.records
    assert (record.billed_s, record.charge_cents, record.end_ms) == (5, 5 * CENTS_PER_S, hangup_ms)
    assert record.end_reason == "caller_hangup" and len(wire.sent(NODE, AGENT, method="BYE")) > 3
    assert balance(wire) == BALANCE_CENTS - 5 * CENTS_PER_S and wire.manager.calls == {}


def test_a_carrier_connection_closed_after_the_ack_is_no_hang_up_and_its_silence_ends_the_call(wire):
    """The carrier's connection closes right after the ACK (the node's transports report a transport error
    for the peer, failing the INVITE transaction RFC 6026 keeps after our 2xx), and it sends no RTP: the
    call is not ended by the close (the carrier may reconnect for its BYE, RFC 3261 §18), but by the
    silence watch within ``silence_timeout_s``; it is billed to the carrier's last sign of life (its setup:
    nothing is charged), the agent gets a BYE, and the record is written.  On the old code the close
    ended the call at once as ``carrier_transport_failed``."""
    wire.rig.relay.silence_timeout_s = 5
    call = bridged_call(wire)
    answered_ms = round(wire.now() * 1000)
    wire.node.transport_error(Peer("udp", "127.0.0.1", CARRIER), wire.now())
    wire.pump()
    wire.run(2)
    assert call.state.value == "bridged" and not wire.sent(NODE, AGENT, method="BYE")
    wire.run(5)
    assert wire.sent(NODE, AGENT, method="BYE")
    wire.run(40, step_s=0.5)
    (record,) = wire.records
    assert record.end_reason == "media_timeout"
    assert (record.billed_s, record.charge_cents, record.end_ms) == (0, 0, answered_ms)
    assert balance(wire) == BALANCE_CENTS and wire.billing.sessions == () and wire.manager.calls == {}


@pytest.fixture
def warnings_logged():
    """The warnings logged through Twisted's logger during the test."""
    from twisted.logger import LogLevel, formatEvent, globalLogPublisher
    seen: list = []

    def observe(event):
        if event.get("log_level") is LogLevel.warn:
            seen.append((event.get("call_id"), formatEvent(event)))
    globalLogPublisher.addObserver(observe)
    yield seen
    globalLogPublisher.removeObserver(observe)


def test_our_relayed_reinvite_the_callers_transport_cannot_carry_ends_the_call(wire, warnings_logged):
    """The agent holds after 3 s; the re-INVITE we relay to the caller cannot be sent (the transport reports
    the caller's peer failed, as for a connection that cannot be opened or a TLS handshake that fails): it is
    logged at warning with the call id, the agent gets our BYE at once instead of a silent call, the caller
    pays the 3 s, and the record says the caller was out of reach."""
    call = bridged_call(wire)
    wire.run(3)
    failed_ms = round(wire.now() * 1000)
    wire.raw[CARRIER] = []
    wire.agent.send("INVITE", wire.agent.sdp("8 101", direction="sendonly"))
    [reinvite] = [m for m in wire.raw[CARRIER] if getattr(m, "method", None) == "INVITE"]
    assert not wire.sent(NODE, AGENT, method="BYE")
    wire.node.transport_error(Peer("udp", "127.0.0.1", CARRIER), wire.now())
    wire.pump()
    assert call.state.value == "closing" and wire.sent(NODE, AGENT, method="BYE")
    assert wire.agent.finals("INVITE")[-1].status >= 300          # the agent's hold got its answer too
    assert balance(wire) == BALANCE_CENTS - 3 * CENTS_PER_S
    assert (call.call_id, f"call {call.call_id}: our INVITE to the caller could not be sent (503)") in warnings_logged
    wire.run(40, step_s=0.5)
    (record,) = wire.records
    assert (record.end_reason, record.billed_s, record.end_ms) == ("caller_unreachable", 3, failed_ms)
    assert wire.manager.calls == {} and wire.billing.sessions == ()


def test_our_session_refresh_the_caller_never_answers_ends_the_call_when_it_times_out(wire, warnings_logged):
    """The caller asked us to refresh every 600 s (RFC 4028, refresher=uas) and then falls silent: our refresh
    at 300 s is retransmitted until Timer B (32 s); then the agent gets our BYE and billing stops at that
    moment (332 s, not when the session would have expired at 568 s), and the warning names the call and
    the refresh."""
    wire.store.set_balance("demo", CALLER, 1000 * CENTS_PER_S)          # enough for 1000 s
    wire.carrier.call(extra=(("Supported", "timer"), ("Session-Expires", "600;refresher=uas")))
    call = wire.call
    assert call.state.value == "bridged"
    wire.raw[CARRIER] = []
    wire.run(299, step_s=5)
    assert not [m for m in wire.raw[CARRIER] if getattr(m, "method", None) == "INVITE"]
    wire.run(2, step_s=0.5)
    refreshes = [m for m in wire.raw[CARRIER] if getattr(m, "method", None) == "INVITE"]
    assert refreshes and refreshes[0].headers.get("session-expires").startswith("600;refresher=uac")
    wire.run(30, step_s=0.5)
    assert call.state.value == "bridged" and not wire.sent(NODE, AGENT, method="BYE")
    wire.run(2, step_s=0.5)
    assert call.state.value != "bridged" and wire.sent(NODE, AGENT, method="BYE")
    assert not wire.sent(NODE, CARRIER, method="BYE")     # the dialog that timed out is over (§12.2.1.2)
    billed_s = (1000 * CENTS_PER_S - balance(wire)) // CENTS_PER_S
    assert 332 <= billed_s <= 333
    assert (call.call_id, f"call {call.call_id}: our INVITE to the caller got no answer (408)") in warnings_logged
    wire.run(40, step_s=0.5)
    (record,) = wire.records
    assert record.end_reason == "caller_unreachable" and record.billed_s == billed_s


def test_a_media_worker_that_dies_ends_its_calls_at_once_billed_to_that_moment(wire, media_engine):
    """The call's media worker is killed after 4 s of talk: both sides get our BYE at once, the caller pays
    the 4 s (billing stopped at the death, not at a silence timeout), the record says ``media_failed``, the
    worker is started again on its share and the next call is bridged through it."""
    if media_engine != "worker":
        pytest.skip("about media workers")
    from media.workers import RESTART_DELAY_S
    call = bridged_call(wire)
    wire.run(4)
    died_ms = round(wire.now() * 1000)
    wire.rig.spawner.links[-1].kill()
    wire.pump()
    assert wire.sent(NODE, CARRIER, method="BYE") and wire.sent(NODE, AGENT, method="BYE")
    assert balance(wire) == BALANCE_CENTS - 4 * CENTS_PER_S
    wire.run(5, step_s=0.5)
    (record,) = wire.records
    assert record.end_reason == "media_failed" and call.state.value == "done"
    assert (record.billed_s, record.charge_cents, record.end_ms) == (4, 4 * CENTS_PER_S, died_ms)
    assert wire.rig.engine.restarts == 1 and len(wire.rig.spawner.links) == 2 and RESTART_DELAY_S < 5
    bridged_call(wire)
