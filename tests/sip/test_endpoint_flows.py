"""In-dialog requests go back over the connection the dialog's peer sent on (TCP, TLS), with plain `now` numbers.

A phone behind NAT, or one without a server certificate, cannot be reached by a
new connection to its Contact: the BYE the node sends when it ends a call was
lost and the caller stayed in a silent call.  These tests pin the way back: the
peer's open connection first, the Contact once the transport reports it lost.
"""

from __future__ import annotations

from b2bua.sip.endpoint import RequestReceived
from b2bua.sip.peer import Peer
from tests.support.sip_endpoint import endpoint, request, sent

#: the phone's connection to us (its own ephemeral port), and where its Contact says it listens
PHONE_FLOW = Peer("tls", "192.0.2.10", 40312)
PHONE_CONTACT = Peer("tls", "192.0.2.10", 5062)


def _answered_call(ep, flow=PHONE_FLOW):
    ep.receive(request("INVITE", transport="TLS", uri="sips:+493012345678@127.0.0.1",
                       extra=["Contact: <sips:phone@192.0.2.10:5062>"]), flow, 0.0)
    [invite] = ep.take_events()
    dialog_id = ep.respond(invite.transaction_id, 200, 0.1)
    ep.receive(request("ACK", transport="TLS", branch="z9hG4bKack1", to_tag=dialog_id.local_tag), flow, 0.2)
    ep.take_events()
    sent(ep)
    return dialog_id


def _bye_goes_to(ep, dialog_id) -> Peer:
    """Where the BYE we send in the dialog goes."""
    ep.request_in_dialog(dialog_id, "BYE", 10.0)
    [(bye, peer)] = sent(ep)
    assert bye.method == "BYE"
    return peer


def _tls_endpoint():
    return endpoint(local_ports={"udp": 5060, "tcp": 5060, "tls": 5061})


def test_our_bye_goes_over_the_connection_the_callers_invite_came_on():
    ep = _tls_endpoint()
    assert _bye_goes_to(ep, _answered_call(ep)) == PHONE_FLOW


def test_once_that_connection_is_lost_the_contact_is_tried():
    ep = _tls_endpoint()
    dialog_id = _answered_call(ep)
    ep.transport_error(PHONE_FLOW, 5.0)
    assert _bye_goes_to(ep, dialog_id) == PHONE_CONTACT


def test_a_request_on_a_new_connection_makes_that_connection_the_way_back():
    """The phone reconnects (RFC 5923 §4) and sends an INFO on the new connection: our BYE follows it."""
    ep = _tls_endpoint()
    dialog_id = _answered_call(ep)
    ep.transport_error(PHONE_FLOW, 5.0)
    ep.take_events()          # the answered INVITE's transaction hears of the lost connection
    new_flow = Peer("tls", "192.0.2.10", 40999)
    ep.receive(request("INFO", transport="TLS", branch="z9hG4bKinfo", to_tag=dialog_id.local_tag, cseq=2),
               new_flow, 6.0)
    [info] = ep.take_events()
    assert isinstance(info, RequestReceived) and info.dialog_id == dialog_id
    ep.respond(info.transaction_id, 200, 6.0)
    sent(ep)
    assert _bye_goes_to(ep, dialog_id) == new_flow


def test_the_transport_may_close_an_idle_connection_only_when_no_dialog_needs_it():
    ep = _tls_endpoint()
    assert not ep.holds_flow(PHONE_FLOW)
    dialog_id = _answered_call(ep)
    assert ep.holds_flow(PHONE_FLOW)
    ep.request_in_dialog(dialog_id, "BYE", 10.0)
    ep.end_dialog(dialog_id)
    assert not ep.holds_flow(PHONE_FLOW)


def test_udp_dialogs_still_follow_the_contact():
    """Over UDP there is no connection: the remote target is the way, as §12.2.1.1 says."""
    ep = endpoint()
    source = Peer("udp", "192.0.2.10", 40312)
    ep.receive(request("INVITE"), source, 0.0)
    [invite] = ep.take_events()
    dialog_id = ep.respond(invite.transaction_id, 200, 0.1)
    sent(ep)
    assert _bye_goes_to(ep, dialog_id) == Peer("udp", "192.0.2.10", 5062)
