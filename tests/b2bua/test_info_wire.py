"""INFO through the real manager, SIP endpoints and relay (tests.support.calls.Wire): b2bua.info on the wire.

A DTMF INFO from either leg is answered 200 and its key becomes the same :class:`~b2bua.callevents.Dtmf`
an RFC 4733 key becomes (media's ``on_dtmf``): a withheld caller typing its PIN half as RFC 4733 events
and half as INFO is identified.  Other INFOs are answered with what we take (415, 400, 469), an INFO
outside a dialog gets 481, and the call goes on as it was.
"""

from __future__ import annotations

import pytest
from twisted.internet.defer import succeed

from b2bua.call import Call
from b2bua.callevents import Dtmf
from b2bua.capabilities import ALLOW
from billing.session import CallBilling
from tests.billing.test_session_harness import MemorySessionStore
from tests.support.calls import AGENT, CALLER, CARRIER, NODE, SERVICE, bridged_call

ANONYMOUS = "<sip:anonymous@anonymous.invalid>"
RELAY = "application/dtmf-relay"


def send_info(wire, ua, body: bytes, content_type: str | None, headers: tuple[tuple[str, str], ...] = ()):
    """``ua`` sends an INFO in its dialog with the node; its final answer."""
    ua.endpoint.request_in_dialog(ua.dialog_id, "INFO", wire.now(), body=body, content_type=content_type,
                                  headers=headers)
    wire.pump()
    return ua.finals("INFO")[-1]


@pytest.fixture
def keys(monkeypatch):
    """Every :class:`Dtmf` the call takes in, as (key, leg), on its way to the call's own handler."""
    seen = []
    handler = Call._HANDLERS[Dtmf]

    def spy(call, event):
        seen.append((event.digit, event.leg))
        handler(call, event)
    monkeypatch.setitem(Call._HANDLERS, Dtmf, spy)
    return seen


def test_a_withheld_caller_typing_its_pin_by_rfc4733_and_info_is_identified(make_wire, keys):
    """Profile withheld=pin: "4" and "7" come as RFC 4733 events (media's on_dtmf), "1", "1" and "#" as INFO
    (dtmf-relay and dtmf): each INFO gets 200, the five keys make one PIN, the caller is identified by it
    and the agent is rung; after the call nothing is left open."""
    looked_up = []

    def lookup(profile, pin):
        looked_up.append(pin)
        return succeed(CALLER if pin == "4711" else None)
    wire = make_wire(withheld="pin", pin_lookup=lookup)
    store = MemorySessionStore()
    store.set_balance("demo", CALLER, 1000)
    wire.manager.billing = CallBilling(store, wire.clock, node_id="n1", lease_s=60)
    wire.carrier.call(from_=ANONYMOUS)
    call = wire.call
    assert call.state.value == "pin_entry" and wire.carrier.dialog_id is not None
    rfc4733 = wire.manager.media_dtmf(call.call_id)          # what media calls for the caller's RFC 4733 keys
    rfc4733("4")
    rfc4733("7")
    answers = [send_info(wire, wire.carrier, b"Signal=1\r\nDuration=160\r\n", RELAY),
               send_info(wire, wire.carrier, b"1", "application/dtmf")]
    assert call.identity.number is None and looked_up == []
    answers.append(send_info(wire, wire.carrier, b"Signal=#\r\nDuration=160\r\n", RELAY))
    assert [a.status for a in answers] == [200, 200, 200]
    assert [k for k, _ in keys] == ["4", "7", "1", "1", "#"]
    assert [leg for _, leg in keys] == [None, None, call.a, call.a, call.a]
    assert looked_up == ["4711"]
    assert (call.identity.number, call.identity.source) == (CALLER, "pin")
    assert wire.sent(NODE, AGENT, method="INVITE")
    wire.carrier.send("BYE")
    wire.settle()
    (record,) = wire.records
    assert (record.caller, record.identity_source) == (CALLER, "pin")


def test_a_dtmf_info_from_either_leg_of_a_bridged_call_gets_200_and_reaches_the_call(make_wire, keys):
    """Bridged: the carrier's INFO and the agent's each get 200, and the call takes in their keys as Dtmf
    naming the leg; nothing reads keys while bridged, so the call simply goes on."""
    wire = make_wire()
    call = bridged_call(wire)
    assert send_info(wire, wire.carrier, b"Signal=5\r\nDuration=160\r\n", RELAY).status == 200
    assert send_info(wire, wire.agent, b"*", "application/dtmf").status == 200
    assert keys == [("5", call.a), ("*", call.b)]
    assert call.state.value == "bridged"
    wire.carrier.send("BYE")
    wire.settle()


def test_infos_we_cannot_take_are_answered_with_why_and_the_call_goes_on(make_wire, keys):
    """A malformed DTMF body: 400 "Bad DTMF: no Signal"; another body: 415 with Accept; an Info Package:
    469 with an empty Recv-Info; an empty INFO: 200.  No key reaches the call, the call stays bridged, and
    our 2xx's Allow lists INFO."""
    wire = make_wire()
    call = bridged_call(wire)
    (ok,) = wire.sent(NODE, CARRIER, status=200)
    assert ok.headers.get_lines("allow") == [ALLOW] and "INFO" in ALLOW.split(", ")
    bad = send_info(wire, wire.carrier, b"Duration=160\r\n", RELAY)
    assert (bad.status, bad.reason) == (400, "Bad DTMF: no Signal")
    other = send_info(wire, wire.agent, b"<xml/>", "application/vnd.example+xml")
    assert (other.status, other.headers.get("accept")) == (415, "application/dtmf-relay, application/dtmf")
    package = send_info(wire, wire.carrier, b"Signal=5\r\n", RELAY, headers=(("Info-Package", "dtmf"),))
    assert (package.status, package.reason, package.headers.get_lines("recv-info")) == (469, "Bad Info Package", [""])
    assert send_info(wire, wire.carrier, b"", None).status == 200
    assert keys == [] and call.state.value == "bridged"
    wire.carrier.send("BYE")
    wire.settle()


def test_an_info_outside_a_dialog_gets_481(make_wire):
    """An INFO without a To tag (no dialog; RFC 6086 §4.2.1) gets 481, not 405, and makes no call."""
    wire = make_wire()
    request = wire.carrier.endpoint.make_request("INFO", f"sip:{SERVICE}@127.0.0.1:{NODE}",
                                                 from_=f"<sip:{CALLER}@127.0.0.1>", to=f"<sip:{SERVICE}@127.0.0.1>",
                                                 body=b"Signal=5\r\n", content_type=RELAY)
    wire.carrier.endpoint.send_request(request, wire.now())
    wire.pump()
    (answer,) = wire.carrier.finals("INFO")
    assert answer.status == 481 and wire.manager.calls == {}
    wire.settle()
