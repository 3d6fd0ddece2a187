"""The endpoint as a UAS, with plain bytes and plain `now` numbers (no reactor)."""

from __future__ import annotations

import pytest

from b2bua.sip.endpoint import (
    AckNeverCame, AckReceived, CancelReceived, DialogEnded, OpenCounts, RequestReceived, TransactionEnded,
    TransactionTimedOut,
)
from b2bua.sip.peer import Peer
from tests.support.sip_endpoint import CARRIER, endpoint, request, run_timers, sent, statuses


def _invite(ep, now=0.0, **kw):
    ep.receive(request("INVITE", **kw), CARRIER, now)
    [ev] = ep.take_events()
    assert isinstance(ev, RequestReceived) and ev.request.method == "INVITE"
    return ev


def test_invite_gets_100_at_once_then_180_and_200_retransmitted_until_ack():
    """INVITE -> 100 at once; TU's 180 and 200; the 200 is resent at 0.5, 1.5, 3.5 s after it, until the ACK."""
    ep = endpoint()
    ev = _invite(ep)
    out = sent(ep)
    assert statuses(out) == [100] and out[0][1] == CARRIER
    assert out[0][0].to.tag is None
    ep.respond(ev.transaction_id, 180, 0.1)
    dialog_id = ep.respond(ev.transaction_id, 200, 1.0, body=b"v=0\r\n", content_type="application/sdp")
    out = sent(ep)
    assert statuses(out) == [180, 200]
    ringing, ok = out[0][0], out[1][0]
    assert ringing.to.tag == ok.to.tag == dialog_id.local_tag
    assert ok.contact is not None and str(ok.contact.uri) == "sip:127.0.0.1:5060"
    assert ok.body == b"v=0\r\n" and ok.headers.get("content-type") == "application/sdp"
    resent = run_timers(ep, 4.9)
    assert [(t, m.status) for t, m, _ in resent] == [(1.5, 200), (2.5, 200), (4.5, 200)]
    ep.receive(request("ACK", branch="z9hG4bKack1", to_tag=ok.to.tag), CARRIER, 4.9)
    [ack] = ep.take_events()
    assert isinstance(ack, AckReceived) and ack.dialog_id == dialog_id
    assert run_timers(ep, 40.0) == []
    assert ep.open_counts().dialogs == 1


def test_the_dialog_id_our_2xx_returns_is_the_dialogs_own():
    """A held call keeps one DialogId per dialog: the id ``respond`` hands the TU is the dialog's own object
    (and the index's key), not an equal copy."""
    ep = endpoint()
    ev = _invite(ep)
    dialog_id = ep.respond(ev.transaction_id, 200, 1.0)
    assert ep.dialog(dialog_id).id is dialog_id
    assert next(key for key in ep.dialogs if key == dialog_id) is dialog_id


def test_bye_in_dialog_gets_200_and_ends_the_dialog():
    """A BYE naming our dialog reaches the TU with the dialog id; its 200 ends the dialog."""
    ep = endpoint()
    ev = _invite(ep)
    dialog_id = ep.respond(ev.transaction_id, 200, 0.0)
    ep.receive(request("ACK", branch="z9hG4bKack1", to_tag=dialog_id.local_tag), CARRIER, 0.1)
    ep.receive(request("BYE", branch="z9hG4bKbye1", to_tag=dialog_id.local_tag, cseq=2), CARRIER, 5.0)
    events = ep.take_events()
    bye = events[-1]
    assert isinstance(bye, RequestReceived) and bye.dialog_id == dialog_id and bye.request.method == "BYE"
    sent(ep)
    ep.respond(bye.transaction_id, 200, 5.0)
    out = sent(ep)
    assert statuses(out) == [200] and out[0][0].cseq.method == "BYE"
    assert isinstance(ep.take_events()[-1], DialogEnded)
    # a retransmitted BYE gets the same 200 from the transaction, not a 481
    ep.receive(request("BYE", branch="z9hG4bKbye1", to_tag=dialog_id.local_tag, cseq=2), CARRIER, 6.0)
    assert statuses(sent(ep)) == [200] and ep.take_events() == []
    run_timers(ep, 100.0)
    assert ep.open_counts() == OpenCounts(0, 0, 0)


def test_retransmitted_invite_gets_the_last_provisional_again():
    """§17.2.1: an INVITE retransmission in Proceeding re-gets the last response sent (180), not a new event."""
    ep = endpoint()
    ev = _invite(ep)
    ep.respond(ev.transaction_id, 180, 0.1)
    sent(ep)
    ep.receive(request("INVITE"), CARRIER, 0.5)
    out = sent(ep)
    assert statuses(out) == [180]
    assert ep.take_events() == []


def test_cancel_gets_200_and_the_invite_487_then_the_ack_is_absorbed():
    """CANCEL of a ringing INVITE: 200 to the CANCEL, 487 to the INVITE, CancelReceived; its ACK ends it."""
    ep = endpoint()
    ev = _invite(ep)
    ep.respond(ev.transaction_id, 180, 0.1)
    sent(ep)
    ep.receive(request("CANCEL"), CARRIER, 1.0)
    out = sent(ep)
    assert [(m.status, m.cseq.method) for m, _ in out] == [(200, "CANCEL"), (487, "INVITE")]
    assert out[0][0].to.tag == out[1][0].to.tag is not None
    [cancelled] = ep.take_events()
    assert isinstance(cancelled, CancelReceived) and cancelled.transaction_id == ev.transaction_id
    # 487 resent (timer G) until the ACK for it (same branch as the INVITE)
    assert [(t, m.status) for t, m, _ in run_timers(ep, 2.0)] == [(1.5, 487)]
    ep.receive(request("ACK", to_tag=out[1][0].to.tag), CARRIER, 2.0)
    assert run_timers(ep, 100.0) == []
    assert ep.take_events() == []
    assert ep.open_counts().transactions == 0


def test_cancel_for_nothing_gets_481():
    """A CANCEL that matches no INVITE transaction is answered 481 (§9.2)."""
    ep = endpoint()
    ep.receive(request("CANCEL", branch="z9hG4bKnothing"), CARRIER, 0.0)
    assert statuses(sent(ep)) == [481]


def test_bye_for_unknown_dialog_gets_481():
    """An in-dialog request (To tag) naming no dialog of ours is answered 481, the TU hears nothing."""
    ep = endpoint()
    ep.receive(request("BYE", to_tag="nosuch", cseq=2), CARRIER, 0.0)
    assert statuses(sent(ep)) == [481]
    assert ep.take_events() == []


def test_ack_for_unknown_dialog_is_dropped_silently():
    """An ACK is never answered, even when it matches nothing."""
    ep = endpoint()
    ep.receive(request("ACK", to_tag="nosuch"), CARRIER, 0.0)
    assert sent(ep) == [] and ep.take_events() == []


def test_merged_request_gets_482():
    """§8.2.2.2: the same INVITE (From tag, Call-ID, CSeq) by another path (branch) is answered 482."""
    ep = endpoint()
    _invite(ep)
    sent(ep)
    ep.receive(request("INVITE", branch="z9hG4bKother", via_host="192.0.2.11"), Peer("udp", "192.0.2.11", 5062), 0.1)
    out = sent(ep)
    assert statuses(out) == [100, 482]
    assert out[1][1] == Peer("udp", "192.0.2.11", 5062)
    assert ep.take_events() == []


def test_lower_cseq_in_dialog_gets_500():
    """§12.2.2: a request whose CSeq is lower than the last one in the dialog is answered 500."""
    ep = endpoint()
    ev = _invite(ep, cseq=10)
    dialog_id = ep.respond(ev.transaction_id, 200, 0.0)
    ep.receive(request("ACK", branch="z9hG4bKack", to_tag=dialog_id.local_tag, cseq=10), CARRIER, 0.1)
    ep.take_events()
    sent(ep)
    ep.receive(request("INFO", branch="z9hG4bKinfo", to_tag=dialog_id.local_tag, cseq=5), CARRIER, 1.0)
    assert statuses(sent(ep)) == [500]
    assert ep.take_events() == []
    ep.receive(request("INFO", branch="z9hG4bKinfo2", to_tag=dialog_id.local_tag, cseq=11), CARRIER, 1.0)
    assert isinstance(ep.take_events()[0], RequestReceived)


def test_response_goes_to_source_ip_and_port_with_rport():
    """RFC 3581: `rport` without value -> Via gets received=IP;rport=PORT and the response goes there."""
    ep = endpoint()
    nat = Peer("udp", "198.51.100.7", 40123)
    ep.receive(request("OPTIONS", via_host="10.0.0.5", via_port=5060, rport=True), nat, 0.0)
    [ev] = ep.take_events()
    ep.respond(ev.transaction_id, 200, 0.0)
    [(resp, peer)] = sent(ep)
    assert peer == nat
    assert resp.top_via.received == "198.51.100.7" and resp.top_via.rport == 40123


def test_response_goes_to_received_and_via_port_without_rport():
    """§18.2.2: without rport, a Via host unlike the source gets `received`, and the response goes to it at the Via port."""
    ep = endpoint()
    ep.receive(request("OPTIONS", via_host="carrier.example", via_port=5070), Peer("udp", "203.0.113.9", 5999), 0.0)
    [ev] = ep.take_events()
    ep.respond(ev.transaction_id, 200, 0.0)
    [(resp, peer)] = sent(ep)
    assert peer == Peer("udp", "203.0.113.9", 5070)
    assert resp.top_via.received == "203.0.113.9"


def test_response_over_tcp_goes_back_on_the_same_stream():
    """§18.2.2: over a reliable transport the response goes back to the connection the request came on."""
    ep = endpoint()
    peer = Peer("tcp", "192.0.2.10", 40000)
    ep.receive(request("OPTIONS", transport="TCP"), peer, 0.0)
    [ev] = ep.take_events()
    ep.respond(ev.transaction_id, 200, 0.0)
    [(_, dest)] = sent(ep)
    assert dest == peer
    assert ep.open_counts().transactions == 0  # timer J is zero on streams


def test_rfc2543_request_matching_without_branch_cookie():
    """RFC 2543 peers (no z9hG4bK): a retransmitted INVITE matches, so does the ACK of our 486 (by To tag)."""
    ep = endpoint()
    ev = _invite(ep, branch=None)
    ep.respond(ev.transaction_id, 486, 0.2)
    out = sent(ep)
    assert statuses(out) == [100, 486]
    tag = out[1][0].to.tag
    ep.receive(request("INVITE", branch=None), CARRIER, 0.3)
    assert statuses(sent(ep)) == [486] and ep.take_events() == []
    ep.receive(request("ACK", branch=None, to_tag="wrong"), CARRIER, 0.4)
    assert run_timers(ep, 0.7) and ep.open_counts().transactions == 1  # still resending: wrong tag did not match
    ep.receive(request("ACK", branch=None, to_tag=tag), CARRIER, 0.8)
    assert run_timers(ep, 100.0) == [] and ep.open_counts().transactions == 0


def test_rfc2543_different_cseq_is_a_new_transaction():
    """Without the cookie a request with another CSeq is a new transaction, even with the same Via."""
    ep = endpoint()
    ep.receive(request("OPTIONS", branch=None, cseq=1), CARRIER, 0.0)
    ep.receive(request("OPTIONS", branch=None, cseq=2), CARRIER, 0.0)
    assert len(ep.take_events()) == 2


def test_unaddressable_garbage_and_bad_responses_are_dropped():
    """Bytes that are no message, or a response that cannot be read, get nothing back and raise nothing."""
    ep = endpoint()
    for junk in (b"", b"\x00\xff\xfe", b"hello world\r\n\r\n", b"SIP/2.0 abc\r\n\r\n", b"INVITE\r\n\r\n"):
        ep.receive(junk, CARRIER, 0.0)
    assert sent(ep) == [] and ep.take_events() == []
    assert sum(ep.dropped.values()) == 5


def test_parse_error_with_readable_via_gets_400_with_reason():
    """A request whose Content-Length lies, but whose Via/From/To/Call-ID/CSeq are readable, gets a 400."""
    ep = endpoint()
    data = request("OPTIONS").replace(b"Content-Length: 0", b"Content-Length: 99")
    ep.receive(data, CARRIER, 0.0)
    [(resp, peer)] = sent(ep)
    assert resp.status == 400 and "Content-Length" in resp.reason
    assert peer == CARRIER and resp.call_id == "call-1@192.0.2.10"


def test_check_request_answers_go_through_a_transaction():
    """A Require we do not support gets 420 with Unsupported; its retransmission the same 420 again."""
    ep = endpoint()
    ep.receive(request("OPTIONS", extra=("Require: foo",)), CARRIER, 0.0)
    [(resp, _)] = sent(ep)
    assert resp.status == 420 and resp.headers.get("unsupported") == "foo"
    ep.receive(request("OPTIONS", extra=("Require: foo",)), CARRIER, 0.5)
    assert statuses(sent(ep)) == [420]
    assert ep.take_events() == []


def test_method_not_allowed_gets_405_with_allow():
    """A method outside the allowed set is answered 405 with Allow."""
    ep = endpoint(allowed_methods={"INVITE", "ACK", "BYE", "CANCEL"})
    ep.receive(request("MESSAGE"), CARRIER, 0.0)
    [(resp, _)] = sent(ep)
    assert resp.status == 405 and "INVITE" in resp.headers.get("allow")


def test_no_ack_for_200_tells_the_tu_after_64_t1():
    """§13.3.1.4: without an ACK the 2xx is resent up to T2 apart until 32 s, then AckNeverCame."""
    ep = endpoint()
    ev = _invite(ep)
    dialog_id = ep.respond(ev.transaction_id, 200, 0.0)
    sent(ep)
    resent = run_timers(ep, 100.0)
    assert [t for t, m, _ in resent if m.status == 200] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert AckNeverCame(dialog_id) in ep.take_events()
    ep.request_in_dialog(dialog_id, "BYE", 32.0)
    [(bye, peer)] = sent(ep)
    assert bye.method == "BYE" and str(bye.uri) == "sip:carrier@192.0.2.10:5062" and peer == CARRIER


def test_invite_failure_without_ack_times_out_with_timer_h():
    """Our 486 is resent (G) until H at 32 s, then TransactionTimedOut."""
    ep = endpoint()
    ev = _invite(ep)
    ep.respond(ev.transaction_id, 486, 0.0)
    sent(ep)
    resent = run_timers(ep, 100.0)
    assert len(resent) == 10 and all(m.status == 486 for _, m, _ in resent)
    [timeout] = ep.take_events()
    assert isinstance(timeout, TransactionTimedOut) and timeout.transaction_id == ev.transaction_id


def test_responding_twice_with_a_final_is_a_local_error():
    """The TU may not send a second final response: it is told at once (TransactionError)."""
    from b2bua.sip.endpoint import TransactionError
    ep = endpoint()
    ep.receive(request("OPTIONS"), CARRIER, 0.0)
    [ev] = ep.take_events()
    ep.respond(ev.transaction_id, 200, 0.0)
    with pytest.raises(TransactionError):
        ep.respond(ev.transaction_id, 404, 0.0)


def test_rfc2543_ack_for_2xx_matches_through_the_accepted_transaction():
    """An RFC 2543 peer's ACK for our 200 (no branch) matches the INVITE transaction and stops the 2xx resends."""
    ep = endpoint()
    ev = _invite(ep, branch=None)
    dialog_id = ep.respond(ev.transaction_id, 200, 0.0)
    sent(ep)
    ep.receive(request("ACK", branch=None, to_tag=dialog_id.local_tag), CARRIER, 0.3)
    [ack] = ep.take_events()
    assert isinstance(ack, AckReceived) and ack.dialog_id == dialog_id
    assert run_timers(ep, 100.0) == []
    assert ep.open_counts() == OpenCounts(0, 1, 0)


def test_invite_failure_over_tcp_is_not_resent_and_a_closed_stream_is_reported():
    """Over TCP: no timer G resends of a 486; when the stream fails the TU hears TransportFailed."""
    from b2bua.sip.endpoint import TransportFailed
    ep = endpoint()
    stream = Peer("tcp", "192.0.2.10", 40001)
    ep.receive(request("INVITE", transport="TCP"), stream, 0.0)
    [ev] = ep.take_events()
    ep.respond(ev.transaction_id, 486, 0.0)
    assert statuses(sent(ep)) == [100, 486]
    assert run_timers(ep, 10.0) == []
    ep.transport_error(stream, 10.0)
    assert ep.take_events() == [TransportFailed(ev.transaction_id, "INVITE", stream)]
    assert ep.open_counts() == OpenCounts(0, 0, 0)


def test_bye_before_the_lost_ack_stops_the_2xx_resends():
    """The ACK was lost and the caller hangs up: answering its BYE ends the dialog and the 2xx resends."""
    ep = endpoint()
    ev = _invite(ep)
    dialog_id = ep.respond(ev.transaction_id, 200, 0.0)
    sent(ep)
    assert [(t, m.cseq.method) for t, m, _ in run_timers(ep, 0.7)] == [(0.5, "INVITE")]
    ep.receive(request("BYE", branch="z9hG4bKbye", to_tag=dialog_id.local_tag, cseq=2), CARRIER, 0.7)
    [bye] = ep.take_events()
    ep.respond(bye.transaction_id, 200, 0.7)
    assert [(m.status, m.cseq.method) for m, _ in sent(ep)] == [(200, "BYE")]
    assert run_timers(ep, 100.0) == []
    assert ep.take_events() == [DialogEnded(dialog_id, "bye received")]
    assert ep.open_counts() == OpenCounts(0, 0, 0)


def test_answering_after_the_cancel_raced_it_is_refused_locally():
    """The CANCEL won the race: the INVITE already got its 487, so the TU's 200 is a TransactionError, nothing sent."""
    from b2bua.sip.endpoint import TransactionError
    ep = endpoint()
    ev = _invite(ep)
    ep.receive(request("CANCEL"), CARRIER, 1.0)
    sent(ep)
    with pytest.raises(TransactionError):
        ep.respond(ev.transaction_id, 200, 1.1)
    assert sent(ep) == [] and ep.open_counts().dialogs == 0


def test_invite_refused_once_is_one_response_per_invite_received_and_freed_after_t4():
    """``respond(..., retransmit=False)``: the 503 goes once (no timer G toward a source that never ACKs),
    each retransmitted INVITE gets the same bytes once more, no TransactionTimedOut; the transaction is
    gone after T4 (5 s), not 32 s. Once freed, a late retransmission is a new request for the TU."""
    ep = endpoint()
    ev = _invite(ep)
    ep.take_outgoing()  # the 100 Trying
    ep.respond(ev.transaction_id, 503, 0.0, retransmit=False)
    [first] = ep.take_outgoing()
    assert first.data.startswith(b"SIP/2.0 503 Service Unavailable\r\n") and first.peer == CARRIER
    assert run_timers(ep, 0.49) == []
    ep.receive(request("INVITE"), CARRIER, 0.5)
    ep.receive(request("INVITE"), CARRIER, 1.5)
    assert [o.data for o in ep.take_outgoing()] == [first.data, first.data]
    assert run_timers(ep, 100.0) == []
    assert ep.take_events() == []
    assert ep.open_counts() == OpenCounts(0, 0, 0)
    ep.receive(request("INVITE"), CARRIER, 101.0)
    assert [type(e) for e in ep.take_events()] == [RequestReceived]


def test_invite_refused_once_ends_at_its_ack():
    """The ACK for a once-sent 486 frees the transaction at once and is not handed to the TU."""
    ep = endpoint()
    ev = _invite(ep)
    ep.respond(ev.transaction_id, 486, 0.0, retransmit=False)
    [*_, (resp, _)] = sent(ep)
    ep.receive(request("ACK", to_tag=resp.to.tag), CARRIER, 0.1)
    assert sent(ep) == [] and ep.take_events() == []
    assert ep.open_counts() == OpenCounts(0, 0, 0)


def test_only_a_refusal_may_be_sent_without_retransmission():
    """A 180 or 200 with ``retransmit=False`` is the TU's mistake: TransactionError, nothing sent."""
    from b2bua.sip.endpoint import TransactionError
    ep = endpoint()
    ev = _invite(ep)
    sent(ep)
    for status in (180, 200):
        with pytest.raises(TransactionError):
            ep.respond(ev.transaction_id, status, 0.0, retransmit=False)
    assert sent(ep) == []


def test_the_cores_own_refusal_of_an_invite_is_sent_once():
    """An INVITE with an unsupported Require gets its 420 once, not resent by timer G until H."""
    ep = endpoint()
    ep.receive(request("INVITE", extra=("Require: foo",)), CARRIER, 0.0)
    assert statuses(sent(ep)) == [100, 420]
    assert run_timers(ep, 100.0) == []
    assert ep.open_counts() == OpenCounts(0, 0, 0)


def test_an_endpoint_made_with_report_ended_says_when_each_transaction_is_gone():
    """``report_ended``: each transaction's TransactionEnded comes once it is gone, after every event that
    carried its id: the INVITE's 32 s after its 200 was ACKed (Timer L), a BYE over TCP at its 200 (no Timer J
    on a stream), after the DialogEnded its 200 brought. Without ``report_ended``, none comes."""
    ep = endpoint(report_ended=True)
    ev = _invite(ep)
    dialog_id = ep.respond(ev.transaction_id, 200, 0.0)
    ep.receive(request("ACK", branch="z9hG4bKack1", to_tag=dialog_id.local_tag), CARRIER, 0.1)
    assert [type(e) for e in ep.take_events()] == [AckReceived]
    run_timers(ep, 31.0)
    assert ep.take_events() == []
    run_timers(ep, 33.0)
    assert ep.take_events() == [TransactionEnded(ev.transaction_id)]
    ep.receive(request("BYE", branch="z9hG4bKbye1", to_tag=dialog_id.local_tag, cseq=2, transport="TCP"),
               Peer("tcp", "192.0.2.10", 5062), 40.0)
    [bye] = ep.take_events()
    ep.respond(bye.transaction_id, 200, 40.0)
    ended = ep.take_events()
    assert [type(e) for e in ended] == [DialogEnded, TransactionEnded]
    assert ended[1] == TransactionEnded(bye.transaction_id)
    quiet = endpoint()
    ev = _invite(quiet)
    quiet.respond(ev.transaction_id, 486, 0.0)
    run_timers(quiet, 40.0)
    assert quiet.take_events() == [TransactionTimedOut(ev.transaction_id, "INVITE", None)]
    assert quiet.open_counts().transactions == 0
