"""UDP hands the core one Peer value per source address, and a response goes to that same Peer.

A finished transaction keeps its peers for up to 32 s; sharing one frozen Peer per source address
keeps the objects the garbage collector walks down to a few.  The values are what they were.
"""

from __future__ import annotations

from b2bua.sip.headers import Via
from b2bua.sip.peer import Peer
from b2bua.sip.transactions import response_destination
from b2bua.transport import SipTransports, _SipDatagram
from tests.transport.test_adapter import Reactor, ScriptedCore


def test_datagrams_from_one_address_share_one_peer_and_others_get_their_own():
    """Two datagrams from 127.0.0.1:7000 bring the same Peer object; another port another, equal to its
    address; past PEERS_KEPT addresses the kept ones are dropped, and the values stay right."""
    reactor, core = Reactor(), ScriptedCore()
    transports = SipTransports(reactor, core, lambda e: None)
    transports.listen_udp(5555, "127.0.0.1")
    feed = reactor.udp[0].protocol.datagramReceived
    feed(b"INVITE a", ("127.0.0.1", 7000))
    feed(b"INVITE b", ("127.0.0.1", 7000))
    feed(b"INVITE c", ("127.0.0.1", 7001))
    (_, first, _), (_, second, _), (_, third, _) = core.received
    assert first is second and first == Peer("udp", "127.0.0.1", 7000)
    assert third == Peer("udp", "127.0.0.1", 7001)
    for port in range(_SipDatagram.PEERS_KEPT):
        feed(b"x", ("192.0.2.1", 10000 + port))
    assert len(reactor.udp[0].protocol._peers) <= _SipDatagram.PEERS_KEPT
    feed(b"INVITE d", ("127.0.0.1", 7000))
    assert core.received[-1][1] == first


def test_response_destination_is_the_source_peer_itself_when_the_via_names_it():
    """§18.2.2 with rport: received:rport equal to the source gives the source Peer object; another
    address (the Via's sent-by without rport) gives a new equal-by-value Peer."""
    source = Peer("udp", "198.51.100.7", 40000)
    stamped = Via.parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx;received=198.51.100.7;rport=40000")
    assert response_destination(stamped, source) is source
    plain = Via.parse("SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKx")
    assert response_destination(plain, source) == Peer("udp", "10.0.0.1", 5062)
    same = Via.parse("SIP/2.0/UDP 198.51.100.7:40000;branch=z9hG4bKx")
    assert response_destination(same, source) is source
