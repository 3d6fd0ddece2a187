"""The adapter's timer when the deadline moves later, and UDP sends on a live socket (what ``udp.Port.write`` checked)."""

from __future__ import annotations

import socket

import pytest
from twisted.internet import reactor

from b2bua.sip.peer import Outgoing, Peer
from b2bua.transport import SipTransports
from tests.transport.test_adapter import Reactor, ScriptedCore, listening_at


def test_a_deadline_moved_later_moves_the_one_timer_and_nothing_fires_before_it():
    """Armed at 100.2, then the deadline goes to 100.8: one delayed call at 100.8; the core is timed only then."""
    clock = Reactor()
    _, core, feed = listening_at(clock, 100)
    core.deadline = 100.2
    feed(b"a", ("127.0.0.1", 7000))
    core.deadline = 100.8
    feed(b"b", ("127.0.0.1", 7000))
    assert [c.getTime() for c in clock.getDelayedCalls()] == [pytest.approx(100.8)]
    clock.advance(0.5)
    assert core.timers == []
    clock.advance(0.3)
    assert core.timers == [pytest.approx(100.8)]
    assert clock.getDelayedCalls() == []


class TickingReactor(Reactor):
    """A clock that moves on by a microsecond at every read, as a real one does between two reads."""

    def seconds(self) -> float:
        self.rightNow += 1e-6
        return self.rightNow


def test_a_steady_deadline_keeps_its_delayed_call_while_the_clock_moves():
    """Input after input with the same endpoint deadline: the one DelayedCall stays, not cancelled and made anew."""
    clock = TickingReactor()
    _, core, feed = listening_at(clock, 100)
    core.deadline = 100.5
    feed(b"a", ("127.0.0.1", 7000))
    [armed] = clock.getDelayedCalls()
    for data in (b"b", b"c", b"d"):
        feed(data, ("127.0.0.1", 7000))
        assert clock.getDelayedCalls() == [armed] and armed.active()
    core.deadline = 100.3
    feed(b"e", ("127.0.0.1", 7000))
    [sooner] = clock.getDelayedCalls()
    assert sooner is not armed and sooner.getTime() == pytest.approx(100.3, abs=1e-3)


@pytest.fixture
def live():
    """Our transports listening on a live UDP socket, and a plain socket to receive on; both closed after."""
    transports = SipTransports(reactor, ScriptedCore(), lambda e: None)
    transports.listen_udp(0, "127.0.0.1")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    probe.settimeout(2.0)
    yield transports, probe
    probe.close()
    transports.stop()
    for _ in range(10):
        reactor.iterate(0.001)


def _send(transports: SipTransports, data: bytes, host: str, port: int) -> None:
    transports.endpoint.outgoing.append(Outgoing(data, Peer("udp", host, port)))
    transports.flush()


def test_a_datagram_to_an_address_arrives_whole(live):
    """Bytes for an IPv4 address go out as one datagram to that address and port."""
    transports, probe = live
    _send(transports, b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n\r\n", "127.0.0.1", probe.getsockname()[1])
    _send(transports, b"second", "127.0.0.1", probe.getsockname()[1])
    assert probe.recv(65535) == b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n\r\n"
    assert probe.recv(65535) == b"second"
    assert (transports.sent, transports.undeliverable) == (2, 0)


def test_a_host_name_is_never_resolved_and_counts_as_undeliverable(live):
    """A peer named by a host name (a Via's maddr, say) is not sent to: no lookup on the reactor thread."""
    transports, probe = live
    for _ in range(2):
        _send(transports, b"x", "localhost", probe.getsockname()[1])
    assert transports.undeliverable == 2
    assert [peer for peer, _ in transports.endpoint.errors] == [Peer("udp", "localhost", probe.getsockname()[1])] * 2
    probe.settimeout(0.05)
    with pytest.raises(socket.timeout):
        probe.recv(65535)


def test_a_datagram_too_large_for_udp_counts_as_undeliverable_and_the_next_one_goes(live):
    """EMSGSIZE is a lost message, not an exception out of the reactor: the core hears at once that the peer
    could not be sent to (its transactions fail, RFC 3261 §18.4); the socket still sends after it."""
    transports, probe = live
    _send(transports, b"y" * 70000, "127.0.0.1", probe.getsockname()[1])
    assert transports.undeliverable == 1
    assert [peer for peer, _ in transports.endpoint.errors] == [Peer("udp", "127.0.0.1", probe.getsockname()[1])]
    _send(transports, b"small", "127.0.0.1", probe.getsockname()[1])
    assert probe.recv(65535) == b"small"
