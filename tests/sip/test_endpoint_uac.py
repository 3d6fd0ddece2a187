"""The endpoint as a UAC, with plain bytes and plain `now` numbers (no reactor)."""

from __future__ import annotations

import gc
import sys

from b2bua.sip.endpoint import DialogEnded, ResponseReceived, TransactionTimedOut, TransportFailed
from b2bua.sip.peer import Peer
from tests.support.sip_endpoint import endpoint, response_to, run_timers, sent

AGENT = Peer("udp", "127.0.0.1", 5070)


def _invite(ep, now=0.0, uri="sip:agent@127.0.0.1:5070"):
    req = ep.make_request("INVITE", uri, from_="<sip:+4915112345678@127.0.0.1>", to=f"<{uri}>",
                          body=b"v=0\r\n", content_type="application/sdp")
    tid = ep.send_request(req, now)
    [out] = ep.take_outgoing()
    assert out.peer == AGENT
    return tid, out.data


def test_invite_retransmits_until_provisional():
    """Our INVITE over UDP is resent at 0.5 and 1.5; a 180 at 2.0 stops it and reaches the TU."""
    ep = endpoint()
    tid, data = _invite(ep)
    assert [(t, m.method) for t, m, _ in run_timers(ep, 2.0)] == [(0.5, "INVITE"), (1.5, "INVITE")]
    ep.receive(response_to(data, 180, "Ringing", to_tag="agent1"), AGENT, 2.0)
    [ev] = ep.take_events()
    assert isinstance(ev, ResponseReceived) and ev.transaction_id == tid and ev.response.status == 180
    assert run_timers(ep, 60.0) == []


def test_2xx_is_acked_by_the_core_and_its_retransmission_acked_again():
    """§13.2.2.4: a 2xx gets an ACK (new branch, CSeq 1 ACK, to the Contact); a resent 2xx the same ACK, no event."""
    ep = endpoint()
    tid, data = _invite(ep)
    ok = response_to(data, 200, "OK", to_tag="agent1", extra=("Contact: <sip:agent@127.0.0.1:5071>",))
    ep.receive(ok, AGENT, 1.0)
    [ev] = ep.take_events()
    assert ev.response.status == 200 and ev.dialog_id.remote_tag == "agent1"
    [(ack, peer)] = sent(ep)
    invite_branch = ep.dialog(ev.dialog_id)  # dialog exists
    assert invite_branch.role == "uac"
    assert ack.method == "ACK" and ack.cseq.seq == 1 and ack.cseq.method == "ACK"
    assert str(ack.uri) == "sip:agent@127.0.0.1:5071" and peer == Peer("udp", "127.0.0.1", 5071)
    assert ack.to.tag == "agent1" and ack.top_via.branch.startswith("z9hG4bK")
    assert ack.top_via.branch != ev.response.top_via.branch
    first_ack = ack
    ep.receive(ok, AGENT, 1.5)
    [(again, _)] = sent(ep)
    assert again == first_ack
    assert ep.take_events() == []


def test_the_dialog_id_of_a_2xx_is_the_dialogs_own():
    """A held call keeps one DialogId per dialog: the id the 2xx's event carries is the dialog's own object
    (and the index's key), not an equal copy."""
    ep = endpoint()
    tid, data = _invite(ep)
    ep.receive(response_to(data, 200, "OK", to_tag="agent1"), AGENT, 1.0)
    [ev] = ep.take_events()
    assert ep.dialog(ev.dialog_id).id is ev.dialog_id
    assert next(key for key in ep.dialogs if key == ev.dialog_id) is ev.dialog_id


def test_bye_after_2xx_ends_the_dialog_and_leaves_nothing_open():
    """A BYE in the dialog: CSeq 2, To/From tags of the dialog; its 200 ends the dialog; after 64*T1 all is closed."""
    ep = endpoint()
    tid, data = _invite(ep)
    ep.receive(response_to(data, 200, "OK", to_tag="agent1", extra=("Contact: <sip:agent@127.0.0.1:5070>",)),
               AGENT, 1.0)
    [ev] = ep.take_events()
    sent(ep)
    bye_tid = ep.request_in_dialog(ev.dialog_id, "BYE", 10.0)
    [(bye, peer)] = sent(ep)
    assert bye.method == "BYE" and bye.cseq.seq == 2 and bye.to.tag == "agent1"
    assert bye.from_.tag == ev.dialog_id.local_tag and bye.call_id == ev.dialog_id.call_id
    ep.receive(response_to(serialise_of(bye), 200, "OK"), AGENT, 10.1)
    events = ep.take_events()
    assert isinstance(events[0], ResponseReceived) and events[0].transaction_id == bye_tid
    assert isinstance(events[1], DialogEnded)
    run_timers(ep, 100.0)
    assert ep.open_counts() == type(ep.open_counts())(0, 0, 0)


def serialise_of(message):
    from b2bua.sip.codec import serialise
    return serialise(message)


def test_invite_without_answer_times_out_with_timer_b():
    """No answer: 7 sends in all (0, 0.5 ... 31.5), then TransactionTimedOut at 32 s; nothing stays open."""
    ep = endpoint()
    tid, _ = _invite(ep)
    resent = run_timers(ep, 100.0)
    assert [t for t, _, _ in resent] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    [ev] = ep.take_events()
    assert isinstance(ev, TransactionTimedOut) and ev.transaction_id == tid and ev.method == "INVITE"
    assert ep.open_counts().transactions == 0


def test_options_without_answer_times_out_with_timer_f():
    """A non-INVITE request: resent with gaps capped at T2, F at 32 s."""
    ep = endpoint()
    req = ep.make_request("OPTIONS", "sip:127.0.0.1:5070", from_="<sip:ping@127.0.0.1>", to="<sip:127.0.0.1:5070>")
    tid = ep.send_request(req, 0.0)
    ep.take_outgoing()
    resent = run_timers(ep, 100.0)
    assert [t for t, _, _ in resent] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert ep.take_events() == [TransactionTimedOut(tid, "OPTIONS", None)]


def test_non_2xx_final_is_acked_by_the_transaction_with_the_invite_branch():
    """§17.1.1.3: a 486 gets an ACK with the INVITE's branch and CSeq number; its retransmission re-ACKed."""
    ep = endpoint()
    tid, data = _invite(ep)
    busy = response_to(data, 486, "Busy Here", to_tag="agent1")
    ep.receive(busy, AGENT, 0.2)
    [(ack, peer)] = sent(ep)
    assert ack.method == "ACK" and peer == AGENT
    assert ack.top_via.branch == ep.layer.by_id[tid].request.top_via.branch
    assert ack.cseq.seq == 1 and ack.to.tag == "agent1"
    [ev] = ep.take_events()
    assert ev.response.status == 486 and ev.dialog_id is None
    ep.receive(busy, AGENT, 0.3)
    assert [m.method for m, _ in sent(ep)] == ["ACK"]
    assert ep.take_events() == []


def test_cancel_waits_for_a_provisional_then_goes_with_the_invite_branch():
    """§9.1: CANCEL asked in Calling is held until the first 1xx; it carries the INVITE's branch and CSeq number."""
    ep = endpoint()
    tid, data = _invite(ep)
    ep.cancel(tid, 0.1)
    assert ep.take_outgoing() == []
    ep.receive(response_to(data, 100, "Trying"), AGENT, 0.2)
    [(cancel, peer)] = sent(ep)
    assert cancel.method == "CANCEL" and peer == AGENT
    invite = ep.layer.by_id[tid].request
    assert cancel.top_via.branch == invite.top_via.branch and cancel.cseq.seq == invite.cseq.seq
    ep.receive(response_to(serialise_of(cancel), 200, "OK"), AGENT, 0.3)
    ep.receive(response_to(data, 487, "Request Terminated", to_tag="agent1"), AGENT, 0.4)
    [(ack, _)] = sent(ep)
    assert ack.method == "ACK"
    statuses = [e.response.status for e in ep.take_events()]
    assert statuses == [100, 200, 487]


def test_record_route_becomes_the_route_set_reversed_for_ack_and_bye():
    """§12.1.2: Record-Route p1, p2 in the 2xx -> Route p2, p1 on ACK and BYE, sent to p2 (loose routing)."""
    ep = endpoint()
    tid, data = _invite(ep)
    ok = response_to(data, 200, "OK", to_tag="agent1", extra=(
        "Record-Route: <sip:192.0.2.1:5080;lr>, <sip:192.0.2.2:5090;lr>", "Contact: <sip:agent@127.0.0.1:5070>"))
    ep.receive(ok, AGENT, 1.0)
    [ev] = ep.take_events()
    [(ack, peer)] = sent(ep)
    assert ack.headers.get_all("route") == ["<sip:192.0.2.2:5090;lr>", "<sip:192.0.2.1:5080;lr>"]
    assert str(ack.uri) == "sip:agent@127.0.0.1:5070" and peer == Peer("udp", "192.0.2.2", 5090)
    ep.request_in_dialog(ev.dialog_id, "BYE", 2.0)
    [(bye, peer)] = sent(ep)
    assert bye.headers.get_all("route") == ["<sip:192.0.2.2:5090;lr>", "<sip:192.0.2.1:5080;lr>"]
    assert peer == Peer("udp", "192.0.2.2", 5090)


def test_strict_router_takes_the_request_uri():
    """§12.2.1.1: a first route without lr becomes the Request-URI; the remote target goes last in Route."""
    ep = endpoint()
    tid, data = _invite(ep)
    ok = response_to(data, 200, "OK", to_tag="agent1", extra=(
        "Record-Route: <sip:192.0.2.2:5090>", "Contact: <sip:agent@127.0.0.1:5070>"))
    ep.receive(ok, AGENT, 1.0)
    [(ack, peer)] = sent(ep)
    assert str(ack.uri) == "sip:192.0.2.2:5090"
    assert ack.headers.get_all("route") == ["<sip:agent@127.0.0.1:5070>"]
    assert peer == Peer("udp", "192.0.2.2", 5090)


def test_forked_2xx_with_another_tag_makes_a_second_dialog():
    """Two 2xx with different To tags (a fork) give two dialogs, each ACKed."""
    ep = endpoint()
    tid, data = _invite(ep)
    ep.receive(response_to(data, 200, "OK", to_tag="a", extra=("Contact: <sip:a@127.0.0.1:5070>",)), AGENT, 1.0)
    ep.receive(response_to(data, 200, "OK", to_tag="b", extra=("Contact: <sip:b@127.0.0.1:5070>",)), AGENT, 1.1)
    assert [m.method for m, _ in sent(ep)] == ["ACK", "ACK"]
    assert {e.dialog_id.remote_tag for e in ep.take_events()} == {"a", "b"}
    assert ep.open_counts().dialogs == 2


def test_stream_failure_fails_the_transactions_on_it():
    """RFC 3261 §17.1.4: a TCP stream that closes fails the client transactions sending on it."""
    ep = endpoint()
    req = ep.make_request("INVITE", "sip:agent@127.0.0.1:5070;transport=tcp", from_="<sip:a@127.0.0.1>",
                          to="<sip:agent@127.0.0.1:5070>")
    tid = ep.send_request(req, 0.0)
    [out] = ep.take_outgoing()
    assert out.peer == Peer("tcp", "127.0.0.1", 5070)
    assert run_timers(ep, 5.0) == []  # no retransmission on a stream
    ep.transport_error(Peer("tcp", "127.0.0.1", 5070), 5.0)
    assert ep.take_events() == [TransportFailed(tid, "INVITE", Peer("tcp", "127.0.0.1", 5070))]
    assert ep.open_counts().transactions == 0


def test_response_to_nothing_is_dropped():
    """A response whose branch matches no client transaction is dropped (RFC 6026 §7.1.1)."""
    ep = endpoint()
    tid, data = _invite(ep)
    stray = response_to(data, 200, "OK", to_tag="x").replace(b"branch=z9hG4bK", b"branch=z9hG4bKzz")
    ep.receive(stray, AGENT, 0.1)
    assert ep.take_events() == [] and sent(ep) == []
    assert ep.dropped.get("response to no transaction") == 1


def test_late_ack_with_sdp_when_auto_ack_is_off():
    """With auto_ack off the TU sends the ACK itself (e.g. with an SDP answer); a resent 2xx re-gets it."""
    ep = endpoint(auto_ack=False)
    tid, data = _invite(ep)
    ok = response_to(data, 200, "OK", to_tag="agent1", extra=("Contact: <sip:agent@127.0.0.1:5070>",))
    ep.receive(ok, AGENT, 1.0)
    [ev] = ep.take_events()
    assert sent(ep) == []
    ep.send_ack(ev.dialog_id, 1.1, body=b"v=0\r\n", content_type="application/sdp")
    [(ack, _)] = sent(ep)
    assert ack.body == b"v=0\r\n" and ack.headers.get("content-type") == "application/sdp"
    ep.receive(ok, AGENT, 1.6)
    assert [m.body for m, _ in sent(ep)] == [b"v=0\r\n"]


def _established(ep):
    tid, data = _invite(ep)
    ep.receive(response_to(data, 200, "OK", to_tag="agent1", extra=("Contact: <sip:agent@127.0.0.1:5070>",)),
               AGENT, 1.0)
    [ev] = ep.take_events()
    sent(ep)
    return ev.dialog_id


def test_reinvite_2xx_is_acked_and_refreshes_the_target():
    """A re-INVITE in the dialog: CSeq 2, its 2xx ACKed with CSeq 2 ACK at the new Contact."""
    ep = endpoint()
    dialog_id = _established(ep)
    tid = ep.request_in_dialog(dialog_id, "INVITE", 5.0, body=b"v=0\r\n", content_type="application/sdp")
    [(reinvite, _)] = sent(ep)
    assert reinvite.cseq.seq == 2 and reinvite.contact is not None and reinvite.to.tag == "agent1"
    ep.receive(response_to(serialise_of(reinvite), 200, "OK", extra=("Contact: <sip:agent@127.0.0.1:5072>",)),
               AGENT, 5.1)
    [(ack, peer)] = sent(ep)
    assert str(ack.cseq) == "2 ACK" and peer == Peer("udp", "127.0.0.1", 5072)
    [ev] = ep.take_events()
    assert ev.transaction_id == tid and ev.dialog_id == dialog_id


def _reachable_bytes(root) -> int:
    """The bytes of ``root`` and of every object it reaches (classes aside): what keeping ``root`` keeps."""
    seen: set[int] = set()
    todo, total = [root], 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        todo.extend(gc.get_referents(obj))
    return total


def test_reinvites_leave_the_dialog_no_bigger():
    """A held call's dialog does not grow per re-INVITE: 200 re-INVITEs, each 2xx ACKed, resent once and re-ACKed
    with the same ACK (not reported again), their transactions over, leave it as big as after the first."""
    ep = endpoint()
    dialog_id = _established(ep)

    def reinvite(now):
        ep.request_in_dialog(dialog_id, "INVITE", now, body=b"v=0\r\n", content_type="application/sdp")
        [(req, _)] = sent(ep)
        ok = response_to(serialise_of(req), 200, "OK", extra=("Contact: <sip:agent@127.0.0.1:5070>",))
        ep.receive(ok, AGENT, now + 0.1)
        ep.receive(ok, AGENT, now + 0.2)
        [(ack, _), (again, _)] = sent(ep)
        assert again == ack and str(ack.cseq) == f"{req.cseq.seq} ACK"
        assert len(ep.take_events()) == 1
        run_timers(ep, now + 40.0)

    run_timers(ep, 50.0)
    reinvite(100.0)
    size = _reachable_bytes(ep.dialog(dialog_id))
    for i in range(200):
        reinvite(200.0 + 50.0 * i)
    assert _reachable_bytes(ep.dialog(dialog_id)) <= size
    assert ep.open_counts().transactions == 0


def test_481_to_an_in_dialog_request_ends_the_dialog():
    """§12.2.1.2: a 481 to our INFO means the peer has no such dialog: it ends here too."""
    ep = endpoint()
    dialog_id = _established(ep)
    ep.request_in_dialog(dialog_id, "INFO", 5.0)
    [(info, _)] = sent(ep)
    ep.receive(response_to(serialise_of(info), 481, "Call/Transaction Does Not Exist"), AGENT, 5.1)
    events = ep.take_events()
    assert events[-1] == DialogEnded(dialog_id, "481")
    assert ep.open_counts().dialogs == 0


def test_bye_timeout_ends_the_dialog():
    """No answer to our BYE: timer F, TransactionTimedOut with the dialog, and the dialog is gone."""
    ep = endpoint()
    dialog_id = _established(ep)
    tid = ep.request_in_dialog(dialog_id, "BYE", 5.0)
    sent(ep)
    run_timers(ep, 100.0)
    assert ep.take_events() == [TransactionTimedOut(tid, "BYE", dialog_id), DialogEnded(dialog_id, "timeout")]
    assert ep.open_counts() == type(ep.open_counts())(0, 0, 0)


def test_resent_2xx_before_the_tu_acks_is_not_reported_twice():
    """With auto_ack off, a 2xx retransmission before the TU's ACK is neither reported again nor ACKed."""
    ep = endpoint(auto_ack=False)
    tid, data = _invite(ep)
    ok = response_to(data, 200, "OK", to_tag="agent1", extra=("Contact: <sip:agent@127.0.0.1:5070>",))
    ep.receive(ok, AGENT, 1.0)
    ep.receive(ok, AGENT, 1.5)
    assert len(ep.take_events()) == 1 and sent(ep) == []


def test_bye_from_the_callee_ends_our_uac_dialog():
    """The agent hangs up: its BYE (tags swapped) names our UAC dialog; our 200 ends it."""
    from b2bua.sip.endpoint import RequestReceived
    from tests.support.sip_endpoint import request
    ep = endpoint()
    dialog_id = _established(ep)
    bye = request("BYE", branch="z9hG4bKagentbye", via_host="127.0.0.1", via_port=5070, call_id=dialog_id.call_id,
                  from_tag="agent1", to_tag=dialog_id.local_tag, cseq=1)
    ep.receive(bye, AGENT, 9.0)
    [ev] = ep.take_events()
    assert isinstance(ev, RequestReceived) and ev.dialog_id == dialog_id
    ep.respond(ev.transaction_id, 200, 9.0)
    [(ok, peer)] = sent(ep)
    assert ok.status == 200 and peer == AGENT
    assert ep.take_events() == [DialogEnded(dialog_id, "bye received")]


def test_in_dialog_request_follows_the_contact_transport():
    """A remote target with ;transport=tcp gets the BYE over TCP, with a TCP Via, though the INVITE went by UDP."""
    ep = endpoint()
    tid, data = _invite(ep)
    ep.receive(response_to(data, 200, "OK", to_tag="agent1",
                           extra=("Contact: <sip:agent@127.0.0.1:5070;transport=tcp>",)), AGENT, 1.0)
    [ev] = ep.take_events()
    [(ack, peer)] = sent(ep)
    assert peer == Peer("tcp", "127.0.0.1", 5070) and ack.top_via.transport == "TCP"
    ep.request_in_dialog(ev.dialog_id, "BYE", 2.0)
    [(bye, peer)] = sent(ep)
    assert peer == Peer("tcp", "127.0.0.1", 5070) and bye.top_via.transport == "TCP"
