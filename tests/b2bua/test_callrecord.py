"""The call record built from a finished call's plain facts (no reactor, no call)."""

from __future__ import annotations

from types import SimpleNamespace

from b2bua.callrecord import CallTimes, call_record
from b2bua.identity import CallerIdentity
from b2bua.routing import AgentHunt, Outcome, Router
from billing.profile import CallerClass
from tests.support.callfakes import Profile, billing_profile


def test_a_bridged_and_settled_call_records_who_when_and_what_it_cost():
    route = Router([Profile("demo", billing_profile())], "DE").route("+493012345678")
    hunt = AgentHunt(route)
    hunt.next_agent()
    hunt.record(Outcome.BUSY)
    hunt.next_agent()
    hunt.record(Outcome.ANSWERED)
    record = call_record(call_id="c1", route=route,
                         identity=CallerIdentity("+49301234567", "from", False, CallerClass.LANDLINE,
                                                 received="+49301234567"),
                         hunt=hunt, times=CallTimes(1000, answer_ms=2000, end_ms=62_000), end_reason=None,
                         a_status=200, b_status=200, session_id="s1",
                         settlement=SimpleNamespace(billed_s=60, charge_cents=120))
    assert (record.profile, record.service_number, record.caller, record.caller_class) == (
        "demo", "+493012345678", "+49301234567", "landline")
    assert record.agent_tried == "sip:a1@agents,sip:a2@agents" and record.agent_answered == "sip:a2@agents"
    assert (record.end_reason, record.billed_s, record.charge_cents, record.call_session_id) == (
        "hangup", 60, 120, "s1")


def test_a_call_refused_before_routing_records_nothing_billed():
    record = call_record(call_id="c2", route=None, identity=CallerIdentity(None, "none", True, None), hunt=None,
                         times=CallTimes(1000, end_ms=1000), end_reason="unknown_service_number", a_status=404,
                         b_status=None, session_id=None, settlement=None)
    assert (record.profile, record.agent_tried, record.billed_s, record.charge_cents) == ("", None, 0, 0)
    assert record.end_reason == "unknown_service_number" and record.a_status == 404
