"""Every refusal path releases its call, ports and timers; the offer is checked before anything answers.

Through the real call manager, SIP endpoints and RTP relay (tests.support.calls.Wire): after each
scenario ``Wire.settle`` checks the invariant that no call, dialog, transaction, timer or RTP port pair is
left.  The attack run found one INVITE with an anonymous From and an SDP our media refuses left a call,
two port pairs and a transaction for good (the unidentified and PIN paths answered the carrier before
checking the offer); these tests failed on that code.
"""

from __future__ import annotations

import pytest

from tests.support.calls import CARRIER, NODE, Wire

#: every test here runs with the call's media in process and behind a media worker (tests/b2bua/conftest.py)
BOTH_ENGINES = True

ANONYMOUS = "<sip:anonymous@anonymous.invalid>"
NO_ORIGIN = b"v=0\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
NO_G711 = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 18\r\n"
NOT_UTF8 = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=\xff\xfe\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"


@pytest.fixture
def make_wire():
    wires = []

    def make(**kw) -> Wire:
        wire = Wire("answer", **kw)
        wires.append(wire)
        return wire
    yield make
    for wire in wires:
        wire.close()


def final_statuses(wire: Wire) -> list[int]:
    return [m.status for src, dst, m in wire.log
            if (src, dst) == (NODE, CARRIER) and getattr(m, "status", 0) >= 200]


@pytest.mark.parametrize("withheld", ["reject", "pin"])
@pytest.mark.parametrize("body, status", [(NO_ORIGIN, 400), (NO_G711, 488), (NOT_UTF8, 400)])
def test_an_unusable_offer_from_an_unidentified_caller_is_refused_and_released(make_wire, withheld, body, status):
    """Anonymous From, an offer media refuses: the SIP status for the offer, nothing answered first, and
    no call, transaction, timer or RTP port left once the transaction has ended."""
    wire = make_wire(withheld=withheld, pin_lookup=lambda profile, pin: None)
    wire.carrier.call(from_=ANONYMOUS, body=body)
    assert final_statuses(wire)[:1] == [status]
    assert wire.manager.calls == {}
    wire.settle()


def test_a_refused_caller_never_binds_a_port_pair_for_an_agent(make_wire):
    """A caller who only hears a refusal holds the carrier leg's pair alone, and gives it back."""
    wire = make_wire()
    wire.carrier.call(from_=ANONYMOUS)
    (media,) = wire.media
    assert wire.call.state.value == "refusing"
    assert media.ports[0] != 0 and media.ports[2] == 0 and wire.rig.relay.ports.in_use == 1
    wire.run(30)
    wire.settle()


def test_untrusted_source_is_refused_with_403_once_and_nothing_is_made(make_wire):
    """From an address outside the trusted carriers (default ``untrusted = "refuse"``): 403 at once, sent
    once however long the source stays silent (no retransmission toward a possibly forged address), no
    call, no media."""
    wire = make_wire(trusted=("192.0.2.0/24",))
    wire.carrier.call()
    wire.run(40, step_s=0.5)
    assert final_statuses(wire) == [403]
    assert wire.media == [] and wire.manager.refused_early["untrusted"] == 1
    wire.settle()


def test_untrusted_source_with_pin_policy_is_asked_for_the_pin_whatever_its_from_says(make_wire):
    """``untrusted = "pin"``: the victim's number in From names nobody; the caller is asked for the PIN."""
    wire = make_wire(trusted=("192.0.2.0/24",), untrusted="pin", pin_lookup=lambda profile, pin: None)
    from billing.session import CallBilling
    from tests.billing.test_session_harness import MemorySessionStore
    wire.manager.billing = CallBilling(MemorySessionStore(), wire.clock, node_id="n1", lease_s=60)
    wire.carrier.call()
    call = wire.call
    assert call.identity.number is None and call.identity.untrusted_source
    assert call.state.value == "pin_entry"
    wire.carrier.send("BYE")
    wire.settle()


def test_a_flood_from_one_source_gets_503_with_retry_after_over_its_rate(make_wire):
    """Over ``invites_per_s``/``invite_burst`` per source, a new INVITE is answered 503 with Retry-After
    and nothing is made for it."""
    from b2bua.admission import AdmissionSettings
    wire = make_wire(admission=AdmissionSettings(invites_per_s=1, invite_burst=2, trusted_invites_per_s=1,
                                                 trusted_invite_burst=2))
    for _ in range(3):
        wire.carrier.call(from_=ANONYMOUS)
    rate_limited = [m for src, dst, m in wire.log if (src, dst) == (NODE, CARRIER) and getattr(m, "status", 0) == 503]
    assert len(rate_limited) == 1 and rate_limited[0].headers.get("retry-after") == "1"
    assert len(wire.media) == 2 and wire.manager.refused_early["rate"] == 1
    wire.run(30)
    wire.settle()


@pytest.fixture
def failures():
    """Every failure, error and critical logged through Twisted's logger during the test."""
    from twisted.logger import LogLevel, globalLogPublisher
    seen: list = []

    def observe(event):
        if "log_failure" in event or event.get("log_level") in (LogLevel.error, LogLevel.critical):
            seen.append(event)
    globalLogPublisher.addObserver(observe)
    yield seen
    globalLogPublisher.removeObserver(observe)


@pytest.mark.parametrize("after_s", [0, 1, 2.5])
def test_a_refused_caller_hanging_up_during_the_refusal_is_no_error(make_wire, failures, after_s):
    """The carrier's BYE while the refusal is spoken ends the call: nothing is logged as an error (the node
    logged a CRITICAL AttributeError on every such call), the record keeps the refusal's outcome and says that
    the caller hung up during it, and the node sends no BYE of its own."""
    wire = make_wire()
    wire.carrier.call(from_=ANONYMOUS)
    assert wire.call.state.value == "refusing"
    wire.run(after_s)
    wire.carrier.send("BYE")
    assert [r.end_reason for r in wire.records] == ["unidentified_hangup"]
    assert wire.sent(NODE, CARRIER, method="BYE") == []
    assert failures == []
    wire.settle()
    assert failures == []


def test_a_caller_without_credit_hanging_up_during_the_refusal_is_recorded_so(make_wire, failures):
    """No credit: the refusal is spoken, the caller hangs up in the middle of it; the record's outcome is
    still "no credit" (the provider's list shows it), its end reason says the caller hung up, no error."""
    from billing.db.calls import outcome
    from billing.session import CallBilling
    from tests.billing.test_session_harness import MemorySessionStore
    wire = make_wire()
    wire.manager.billing = CallBilling(MemorySessionStore(), wire.clock, node_id="n1", lease_s=60)
    wire.carrier.call()
    assert wire.call.state.value == "refusing"
    wire.run(1)
    wire.carrier.send("BYE")
    (record,) = wire.records
    assert record.end_reason == "no_credit_hangup" and outcome(record) == "no_credit"
    assert failures == []
    wire.settle()


def test_an_invite_transaction_gone_before_the_answer_ends_the_call_quietly(make_wire, failures):
    """The carrier's INVITE transaction ends (its transport failed) while billing is still being asked:
    the late answer is not sent, no failure is logged, and the call and its media are released."""
    from twisted.internet.defer import Deferred
    from billing.session import CallBilling
    from tests.billing.test_session_harness import MemorySessionStore
    wire = make_wire()
    pending = Deferred()
    billing = CallBilling(MemorySessionStore(), wire.clock, node_id="n1", lease_s=60)
    billing.open = lambda *args: pending
    wire.manager.billing = billing
    wire.carrier.call()
    from b2bua.sip.peer import Peer
    wire.node.transport_error(Peer("udp", "127.0.0.1", CARRIER), wire.now())
    wire.pump()
    from billing.session import Refused
    from twisted.python.failure import Failure
    pending.errback(Failure(Refused("no credit", 0, None)))
    wire.run(1)
    assert failures == []
    assert wire.manager.calls == {}
    wire.settle()
