"""The endpoint's next deadline and its 2xx retransmissions when several dialogs run at once."""

from __future__ import annotations

from b2bua.sip.endpoint import AckNeverCame, AckReceived, RequestReceived
from tests.support.sip_endpoint import CARRIER, endpoint, request, run_timers, sent


def _answered(ep, call: str, now: float):
    ep.receive(request("INVITE", branch=f"z9hG4bK{call}", call_id=f"{call}@192.0.2.10"), CARRIER, now)
    [ev] = [e for e in ep.take_events() if isinstance(e, RequestReceived)]
    dialog_id = ep.respond(ev.transaction_id, 200, now)
    sent(ep)
    return dialog_id


def _ack(ep, call: str, dialog_id, now: float) -> None:
    ep.receive(request("ACK", branch=f"z9hG4bK{call}ack", call_id=f"{call}@192.0.2.10",
                       to_tag=dialog_id.local_tag), CARRIER, now)


def test_an_acked_2xx_stops_while_another_dialogs_2xx_goes_on_resending():
    """Two 200s in flight; the first is ACKed: only the second is resent (T1 after it), and the deadline follows it."""
    ep = endpoint()
    first = _answered(ep, "one", 1.0)
    second = _answered(ep, "two", 1.2)
    _ack(ep, "one", first, 1.1)
    assert [type(e) for e in ep.take_events()] == [AckReceived]
    resent = run_timers(ep, 1.75)
    assert [(t, m.status, m.call_id) for t, m, _ in resent] == [(1.7, 200, "two@192.0.2.10")]
    _ack(ep, "two", second, 1.8)
    assert [type(e) for e in ep.take_events()] == [AckReceived]
    assert [m for _, m, _ in run_timers(ep, 100.0) if getattr(m, "status", None) == 200] == []
    assert ep.take_events() == []


def test_each_unacked_2xx_gives_up_at_its_own_64_t1():
    """Two 200s never ACKed: T1 doubling to T2 for each, and AckNeverCame for each at 64*T1 after its own start."""
    ep = endpoint()
    first = _answered(ep, "one", 0.0)
    second = _answered(ep, "two", 10.0)
    resent = run_timers(ep, 32.0)
    assert [t for t, m, _ in resent if m.call_id == "one@192.0.2.10"] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5,
                                                                          23.5, 27.5, 31.5]
    assert [e.dialog_id for e in ep.take_events() if isinstance(e, AckNeverCame)] == [first]
    run_timers(ep, 42.0)
    assert [e.dialog_id for e in ep.take_events() if isinstance(e, AckNeverCame)] == [second]
    assert [m for _, m, _ in run_timers(ep, 200.0) if getattr(m, "status", None) == 200] == []
    assert ep.open_counts().timers == 0
