"""The transaction layer's matching and response routing rules, one rule per test."""

from __future__ import annotations

from b2bua.sip.codec import parse_message
from b2bua.sip.headers import Via
from b2bua.sip.peer import Outgoing, Peer
from b2bua.sip.transaction import State
from b2bua.sip.transactions import (
    TransactionLayer, Up, build_non_2xx_ack, response_destination, server_key, stamp_via,
)
from tests.support.sip_endpoint import CARRIER, request, response_to


def _req(*args, **kwargs):
    return parse_message(request(*args, **kwargs))


def test_ack_and_invite_share_a_key_cancel_has_its_own():
    """§17.2.3: ACK matches its INVITE (method taken as INVITE); CANCEL, same branch, is another transaction."""
    invite, ack, cancel = _req("INVITE"), _req("ACK"), _req("CANCEL")
    assert server_key(ack) == server_key(invite)
    assert server_key(cancel) != server_key(invite)
    assert server_key(cancel)[:-1] == server_key(invite)[:-1]


def test_branch_key_includes_sent_by():
    """Same branch from another sent-by is another transaction (§17.2.3: branch + sent-by + method)."""
    assert server_key(_req(via_host="192.0.2.10")) != server_key(_req(via_host="192.0.2.11"))


def test_rfc2543_key_uses_uri_tags_call_id_cseq_and_via():
    """Without the cookie: Request-URI, From tag, Call-ID, CSeq and top Via decide."""
    base = server_key(_req(branch=None))
    assert server_key(_req(branch=None)) == base
    assert server_key(_req(branch=None, uri="sip:other@127.0.0.1")) != base
    assert server_key(_req(branch=None, from_tag="x")) != base
    assert server_key(_req(branch=None, call_id="other")) != base
    assert server_key(_req(branch=None, cseq=2)) != base
    assert server_key(_req(branch="1234")) != base  # a non-cookie branch is part of the top Via


def test_stamp_via_fills_rport_and_received():
    """RFC 3581: a bare rport gets the source port, with received = source IP, in the topmost Via only."""
    data = request(rport=True).replace(b"Via: ", b"Via: ", 1)
    data = data.replace(b"Max-Forwards", b"Via: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKlower\r\nMax-Forwards", 1)
    stamped = stamp_via(parse_message(data), Peer("udp", "198.51.100.7", 40000))
    assert stamped.top_via.received == "198.51.100.7" and stamped.top_via.rport == 40000
    assert stamped.vias[1].branch == "z9hG4bKlower" and stamped.vias[1].received is None


def test_stamp_via_leaves_a_matching_sent_by_alone():
    """§18.2.1: when sent-by is the source address, no received is added."""
    req = _req(via_host="192.0.2.10")
    assert stamp_via(req, CARRIER) is req


def test_response_destination_rules():
    """§18.2.2: stream -> same connection; maddr; rport -> received:rport; received -> received:port; else sent-by."""
    udp = Peer("udp", "198.51.100.7", 40000)
    assert response_destination(Via.parse("SIP/2.0/TCP h.example;branch=z9hG4bKx"), Peer("tcp", "1.2.3.4", 999)) \
        == Peer("tcp", "1.2.3.4", 999)
    assert response_destination(Via.parse("SIP/2.0/UDP h;maddr=239.1.1.1;branch=z9hG4bKx"), udp) \
        == Peer("udp", "239.1.1.1", 5060)
    assert response_destination(Via.parse("SIP/2.0/UDP h:5070;received=198.51.100.7;rport=40000"), udp) \
        == Peer("udp", "198.51.100.7", 40000)
    assert response_destination(Via.parse("SIP/2.0/UDP h:5070;received=198.51.100.7"), udp) \
        == Peer("udp", "198.51.100.7", 5070)
    assert response_destination(Via.parse("SIP/2.0/UDP 192.0.2.1"), udp) == Peer("udp", "192.0.2.1", 5060)


def test_new_invite_server_transaction_sends_100_at_once():
    """A new INVITE server transaction answers 100 Trying in the same call, without a To tag."""
    outbox: list[Outgoing] = []
    layer = TransactionLayer(outbox, new_tag=lambda: "tag1")
    [up] = layer.receive_request(_req("INVITE"), CARRIER, 0.0)
    assert up.kind is Up.REQUEST and up.transaction.state is State.PROCEEDING
    [out] = outbox
    resp = parse_message(out.data)
    assert resp.status == 100 and resp.to.tag is None and out.peer == CARRIER
    assert up.transaction.to_tag == "tag1"


def test_response_matches_by_branch_and_cseq_method():
    """§17.1.3: a response with our branch but CSeq method CANCEL does not match the INVITE transaction."""
    outbox: list[Outgoing] = []
    layer = TransactionLayer(outbox)
    invite = _req("INVITE", branch="z9hG4bKours", via_host="127.0.0.1", via_port=5060)
    tx = layer.send_request(invite, Peer("udp", "127.0.0.1", 5070), 0.0)
    sent = outbox.pop().data
    as_cancel = response_to(sent, 200).replace(b"CSeq: 1 INVITE", b"CSeq: 1 CANCEL")
    assert layer.receive_response(parse_message(as_cancel), 0.1) is None
    [up] = layer.receive_response(parse_message(response_to(sent, 180)), 0.1)
    assert up.kind is Up.RESPONSE and up.transaction is tx and tx.state is State.PROCEEDING


def test_non_2xx_ack_copies_the_invite_and_takes_to_from_the_response():
    """§17.1.1.3: Request-URI, Call-ID, From, CSeq number, top Via and Route of the INVITE; To of the response."""
    invite = parse_message(request("INVITE", extra=("Route: <sip:192.0.2.1;lr>",)).replace(
        b"Max-Forwards", b"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKdeeper\r\nMax-Forwards", 1))
    resp = parse_message(response_to(request("INVITE"), 486, to_tag="callee"))
    ack = build_non_2xx_ack(invite, resp)
    assert ack.method == "ACK" and ack.uri == invite.uri and ack.call_id == invite.call_id
    assert len(ack.vias) == 1 and ack.top_via == invite.top_via
    assert str(ack.cseq) == "1 ACK" and ack.to.tag == "callee" and ack.from_ == invite.from_
    assert ack.headers.get_all("route") == ["<sip:192.0.2.1;lr>"]
