"""The Twisted adapter around the SIP endpoint, with no sockets: ``MemoryReactorClock`` and ``StringTransport``.

Bytes in -> endpoint -> bytes out; one timer armed at the endpoint's deadline;
stream framing, keep-alive answers, reuse and opening of connections, garbage
and idle connections closed alone, failures reported to the endpoint.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, formatEvent
from twisted.python.failure import Failure

from b2bua.sip.codec import parse_message
from b2bua.sip.endpoint import CoreFault, SipEndpoint, TransportFailed
from b2bua.sip.peer import Outgoing, Peer
from tests.support.sip_apps import EchoUas
from b2bua.transport import SipCore, SipTransports

OPTIONS = (b"OPTIONS sip:service@127.0.0.1:5060 SIP/2.0\r\n"
           b"Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-opt-1\r\n"
           b"Max-Forwards: 70\r\nFrom: <sip:carrier@127.0.0.1>;tag=f1\r\nTo: <sip:service@127.0.0.1>\r\n"
           b"Call-ID: opt-1@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


def tcp_options(branch: str = "z9hG4bK-tcp-1") -> bytes:
    return OPTIONS.replace(b"UDP 127.0.0.1:6000", b"TCP 127.0.0.1:6000").replace(b"z9hG4bK-opt-1", branch.encode())


class FakeUdpPort:
    """What ``listenUDP`` returns here: records datagrams written."""

    def __init__(self, port: int, protocol) -> None:
        self.port = port
        self.protocol = protocol
        self.written: list[tuple[bytes, tuple[str, int]]] = []
        self.stopped = False

    def write(self, data: bytes, addr) -> None:
        self.written.append((data, addr))

    def getHost(self):
        return IPv4Address("UDP", "127.0.0.1", self.port)

    def stopListening(self):
        self.stopped = True


class Reactor(MemoryReactorClock):
    """MemoryReactorClock with a recording UDP (MemoryReactor has none)."""

    def __init__(self) -> None:
        super().__init__()
        self.udp: list[FakeUdpPort] = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        fake = FakeUdpPort(port or 40000 + len(self.udp), protocol)
        protocol.makeConnection(fake)
        self.udp.append(fake)
        return fake


class ScriptedCore:
    """A test double of the endpoint: records what it is fed; outgoing, events and deadline are set by the test."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, Peer, float]] = []
        self.errors: list[tuple[Peer, float]] = []
        self.timers: list[float] = []
        self.outgoing: list[Outgoing] = []
        self.events: list[object] = []
        self.faults: list[CoreFault] = []
        self.flows: set[Peer] = set()        # peers whose connection an open dialog needs (set by the test)
        self.deadline: float | None = None

    def receive(self, data, peer, now):
        self.received.append((data, peer, now))

    def transport_error(self, peer, now):
        self.errors.append((peer, now))

    def take_outgoing(self):
        out, self.outgoing = self.outgoing, []
        return out

    def take_events(self):
        out, self.events = self.events, []
        return out

    def take_faults(self):
        out, self.faults = self.faults, []
        return out

    def holds_flow(self, peer):
        return peer in self.flows

    def next_deadline(self):
        return self.deadline

    def handle_timer(self, now):
        self.timers.append(now)
        self.deadline = None


def echo_setup():
    reactor = Reactor()
    endpoint = SipEndpoint(local_host="127.0.0.1", local_ports={"udp": 5060, "tcp": 5060})
    uas = EchoUas(endpoint, reactor.seconds)
    transports = SipTransports(reactor, endpoint, uas.on_event, idle_timeout_s=30)
    return reactor, endpoint, uas, transports


def accept(reactor: Reactor, host: str = "127.0.0.1", port: int = 6000):
    """A connection arriving on the (only) TCP listener: its protocol and StringTransport."""
    factory = reactor.tcpServers[-1][1]
    proto = factory.buildProtocol(IPv4Address("TCP", host, port))
    wire = StringTransport(peerAddress=IPv4Address("TCP", host, port))
    proto.makeConnection(wire)
    return proto, wire


def test_scripted_core_and_real_endpoint_provide_the_interface():
    """The test double and the real endpoint both have every method the transports call."""
    for name in ("receive", "transport_error", "take_outgoing", "take_events", "take_faults", "next_deadline",
                 "handle_timer", "holds_flow"):
        assert callable(getattr(ScriptedCore(), name)) and callable(getattr(SipEndpoint, name)), name
        assert hasattr(SipCore, name)


def test_udp_datagram_in_gives_the_answer_out_to_the_via_address():
    """An OPTIONS datagram goes through the real endpoint and EchoUas; the 200 is written to the Via's host:port."""
    reactor, endpoint, uas, transports = echo_setup()
    assert transports.listen_udp(0, "127.0.0.1") == 40000
    port = reactor.udp[0]
    reactor.advance(1000.5)
    port.protocol.datagramReceived(OPTIONS, ("127.0.0.1", 6000))
    assert len(port.written) == 1
    data, addr = port.written[0]
    assert addr == ("127.0.0.1", 6000)
    answer = parse_message(data)
    assert answer.status == 200 and answer.call_id == "opt-1@127.0.0.1"
    assert uas.counts["options"] == 1


def test_the_core_is_fed_the_reactor_time_and_the_source_peer():
    """``now`` is reactor.seconds() at arrival and the peer is the datagram's source address."""
    reactor, core = Reactor(), ScriptedCore()
    transports = SipTransports(reactor, core, lambda e: None)
    transports.listen_udp(5555, "127.0.0.1")
    reactor.advance(12.25)
    reactor.udp[0].protocol.datagramReceived(b"INVITE x", ("127.0.0.1", 7000))
    reactor.udp[0].protocol.datagramReceived(b"\r\n\r\n", ("127.0.0.1", 7000))   # a UDP keep-alive: ignored
    assert core.received == [(b"INVITE x", Peer("udp", "127.0.0.1", 7000), 12.25)]


def test_a_fault_of_the_core_is_logged_once_with_its_call_id_and_traceback():
    """The core drops a message it failed on and hands the fault over: one error event, naming the call id
    and what was counted, carrying the exception's traceback; the next input logs nothing more."""
    from tests.conftest import log_events_during
    reactor, core = Reactor(), ScriptedCore()
    transports = SipTransports(reactor, core, lambda e: None)
    transports.listen_udp(5555, "127.0.0.1")
    try:
        raise KeyError("via")
    except KeyError as exc:
        core.faults.append(CoreFault("abc@host", "internal error: KeyError", exc))

    def two_datagrams():
        reactor.udp[0].protocol.datagramReceived(b"INVITE x", ("127.0.0.1", 7000))
        reactor.udp[0].protocol.datagramReceived(b"INVITE y", ("127.0.0.1", 7000))
    events = [e for e in log_events_during(two_datagrams) if e["log_level"] >= LogLevel.warn]
    assert len(events) == 1 and events[0]["call_id"] == "abc@host" and events[0]["log_failure"].check(KeyError)
    assert events[0]["log_level"] == LogLevel.error and "internal error: KeyError" in formatEvent(events[0])


def listening_at(clock: Reactor, now_s: float):
    """Transports on ``clock`` with a :class:`ScriptedCore`, listening on UDP, the clock moved to ``now_s``:
    the transports, the core and the port's ``datagramReceived`` (for the timer tests)."""
    core = ScriptedCore()
    transports = SipTransports(clock, core, lambda e: None)
    transports.listen_udp(5555, "127.0.0.1")
    clock.advance(now_s)
    return transports, core, clock.udp[0].protocol.datagramReceived


def test_one_timer_is_armed_at_the_deadline_and_re_armed_not_stacked():
    """Exactly one delayed call exists, at the endpoint's deadline; it moves when the deadline moves and goes when it goes."""
    reactor = Reactor()
    transports, core, feed = listening_at(reactor, 100)
    core.deadline = 100.5
    feed(b"a", ("127.0.0.1", 7000))
    feed(b"b", ("127.0.0.1", 7000))
    assert [c.getTime() for c in reactor.getDelayedCalls()] == [100.5]
    core.deadline = 100.2
    feed(b"c", ("127.0.0.1", 7000))
    assert [c.getTime() for c in reactor.getDelayedCalls()] == [100.2]
    core.deadline = None
    feed(b"d", ("127.0.0.1", 7000))
    assert reactor.getDelayedCalls() == []
    core.deadline = 101.0
    transports.flush()
    reactor.advance(0.999)
    assert core.timers == []
    reactor.advance(0.001)
    assert core.timers == [101.0]
    assert reactor.getDelayedCalls() == []      # handle_timer cleared the deadline: nothing left armed


def test_timer_output_is_sent_and_its_events_delivered():
    """What the core produces in handle_timer (a retransmission, an event) leaves at once."""
    reactor, core = Reactor(), ScriptedCore()
    seen: list[object] = []
    transports = SipTransports(reactor, core, seen.append)
    transports.listen_udp(5555, "127.0.0.1")
    core.deadline = 0.5

    def fire(now):
        core.timers.append(now)
        core.deadline = None
        core.outgoing.append(Outgoing(b"RETRANSMIT", Peer("udp", "127.0.0.1", 7000)))
        core.events.append("timed out")
    core.handle_timer = fire
    transports.flush()
    reactor.advance(0.5)
    assert reactor.udp[0].written == [(b"RETRANSMIT", ("127.0.0.1", 7000))]
    assert seen == ["timed out"]


def test_real_endpoint_2xx_retransmissions_run_on_the_one_timer():
    """EchoUas's 200 to an INVITE is resent on the Clock (T1, 2*T1...) until the ACK; never more than one timer armed."""
    reactor, endpoint, uas, transports = echo_setup()
    transports.listen_udp(5060, "127.0.0.1")
    port = reactor.udp[0]
    invite = OPTIONS.replace(b"OPTIONS sip", b"INVITE sip").replace(b"1 OPTIONS", b"1 INVITE")
    invite = invite.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nContact: <sip:carrier@127.0.0.1:6000>\r\n")
    port.protocol.datagramReceived(invite, ("127.0.0.1", 6000))
    statuses = [parse_message(d).status for d, _ in port.written]
    assert statuses == [100, 200]
    for _ in range(3):
        assert len(reactor.getDelayedCalls()) == 1
        reactor.advance(reactor.getDelayedCalls()[0].getTime() - reactor.seconds())
    assert [parse_message(d).status for d, _ in port.written].count(200) >= 3


def test_stream_message_split_over_reads_is_answered_on_the_same_connection():
    """A TCP request in two reads reaches the endpoint once; the 200 goes back on that connection."""
    reactor, endpoint, uas, transports = echo_setup()
    transports.listen_tcp(5060, "127.0.0.1")
    proto, wire = accept(reactor)
    data = tcp_options()
    proto.dataReceived(data[:50])
    assert wire.value() == b""
    proto.dataReceived(data[50:])
    answer = parse_message(wire.value())
    assert answer.status == 200 and uas.counts["options"] == 1
    assert transports.connections.keys() == {Peer("tcp", "127.0.0.1", 6000)}


def test_keepalive_ping_is_answered_with_crlf():
    """CRLFCRLF on a stream is answered with one CRLF (RFC 5626 §3.5.1) and never reaches the core."""
    reactor, core = Reactor(), ScriptedCore()
    transports = SipTransports(reactor, core, lambda e: None)
    transports.listen_tcp(5060, "127.0.0.1")
    proto, wire = accept(reactor)
    proto.dataReceived(b"\r\n\r\n")
    assert wire.value() == b"\r\n" and core.received == []


def test_garbage_closes_only_its_connection():
    """A stream that cannot be framed is aborted; another connection is still answered; the core hears the loss."""
    reactor, endpoint, uas, transports = echo_setup()
    transports.listen_tcp(5060, "127.0.0.1")
    bad, bad_wire = accept(reactor, port=6001)
    good, good_wire = accept(reactor, port=6002)
    bad.dataReceived(b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nContent-Length: banana\r\n\r\n")
    assert bad_wire.disconnecting or bad_wire.disconnected
    bad.connectionLost(Failure(ConnectionDone()))
    good.dataReceived(tcp_options())
    assert parse_message(good_wire.value()).status == 200
    assert not good_wire.disconnecting
    assert Peer("tcp", "127.0.0.1", 6001) not in transports.connections


def test_a_lost_connection_is_reported_to_the_core():
    """connectionLost on a stream calls endpoint.transport_error(peer, now)."""
    reactor, core = Reactor(), ScriptedCore()
    transports = SipTransports(reactor, core, lambda e: None)
    transports.listen_tcp(5060, "127.0.0.1")
    proto, _ = accept(reactor, port=6003)
    reactor.advance(7)
    proto.connectionLost(Failure(ConnectionDone()))
    assert core.errors == [(Peer("tcp", "127.0.0.1", 6003), 7)]


def test_idle_connection_is_closed_after_the_idle_timeout():
    """A connection silent for idle_timeout_s is closed; traffic resets the wait."""
    reactor, endpoint, uas, transports = echo_setup()
    transports.listen_tcp(5060, "127.0.0.1")
    proto, wire = accept(reactor)
    reactor.advance(20)
    proto.dataReceived(b"\r\n\r\n")
    reactor.advance(20)
    assert not wire.disconnecting
    reactor.advance(10)
    assert wire.disconnecting


def test_request_to_a_new_peer_connects_then_reuses_the_connection():
    """Bytes for a TCP peer without a connection open one and wait for it; later bytes reuse it."""
    reactor, core = Reactor(), ScriptedCore()
    transports = SipTransports(reactor, core, lambda e: None)
    peer = Peer("tcp", "127.0.0.1", 5070)
    core.outgoing = [Outgoing(b"FIRST", peer)]
    transports.flush()
    assert [(h, p) for h, p, *_ in reactor.tcpClients] == [("127.0.0.1", 5070)]
    factory = reactor.tcpClients[0][2]
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5070))
    wire = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5070))
    core.outgoing = [Outgoing(b"SECOND", peer)]
    transports.flush()                              # still connecting: queued behind FIRST
    assert len(reactor.tcpClients) == 1
    proto.makeConnection(wire)
    assert wire.value() == b"FIRSTSECOND"
    core.outgoing = [Outgoing(b"THIRD", peer)]
    transports.flush()
    assert wire.value() == b"FIRSTSECONDTHIRD" and len(reactor.tcpClients) == 1


def test_failed_connect_fails_the_transaction():
    """An OPTIONS to a TCP peer that refuses the connection ends in TransportFailed for that transaction."""
    reactor = Reactor()
    endpoint = SipEndpoint(local_host="127.0.0.1", local_ports={"tcp": 5060})
    seen: list[object] = []
    transports = SipTransports(reactor, endpoint, seen.append)
    request = endpoint.make_request("OPTIONS", "sip:agent@127.0.0.1:5070;transport=tcp",
                                    from_="<sip:prepaid@127.0.0.1>", to="<sip:agent@127.0.0.1>")
    tid = endpoint.send_request(request, reactor.seconds())
    transports.flush()
    host, port, factory, *_ = reactor.tcpClients[0]
    factory.clientConnectionFailed(reactor.connectors[0], Failure(ConnectionRefusedError()))
    assert [e for e in seen if isinstance(e, TransportFailed)] == [
        TransportFailed(tid, "OPTIONS", Peer("tcp", "127.0.0.1", 5070))]


def test_a_failing_transaction_user_does_not_stop_the_transport():
    """An exception in on_event is logged; the answer still goes out and later input is still handled."""
    reactor = Reactor()
    endpoint = SipEndpoint(local_host="127.0.0.1", local_ports={"udp": 5060})
    uas = EchoUas(endpoint, reactor.seconds)
    calls = []

    def flaky(event):
        calls.append(event)
        if len(calls) == 1:
            raise RuntimeError("TU bug")
        uas.on_event(event)
    transports = SipTransports(reactor, endpoint, flaky)
    transports.listen_udp(5060, "127.0.0.1")
    port = reactor.udp[0]
    port.protocol.datagramReceived(OPTIONS, ("127.0.0.1", 6000))
    port.protocol.datagramReceived(OPTIONS.replace(b"opt-1", b"opt-2"), ("127.0.0.1", 6000))
    assert [parse_message(d).status for d, _ in port.written] == [200]
    assert parse_message(port.written[0][0]).call_id == "opt-2@127.0.0.1"


def test_stop_closes_listeners_connections_and_the_timer():
    """stop() stops listening, drops connections, cancels the timer; late output is not sent."""
    reactor, core = Reactor(), ScriptedCore()
    transports = SipTransports(reactor, core, lambda e: None)
    transports.listen_udp(5060, "127.0.0.1")
    transports.listen_tcp(5060, "127.0.0.1")
    proto, wire = accept(reactor)
    core.deadline = 5.0
    transports.flush()
    transports.stop()
    assert reactor.udp[0].stopped and wire.disconnecting
    assert reactor.getDelayedCalls() == []
    proto.connectionLost(Failure(ConnectionDone()))
    assert core.errors == []
