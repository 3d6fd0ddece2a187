"""The RTP port range: even/odd pairs, exhaustion, and freed pairs going to the back of the queue."""

from __future__ import annotations

import pytest

import select
import socket

from twisted.internet import reactor

from media.ports import BIND_ATTEMPTS, PortRange, PortsExhausted, SocketPoller, bind_next_pair, bind_pair, connect_twin
from media.relay import Relay

from tests.support.relay import random_range


class StartAt:
    """A random source for PortRange that always answers ``k`` (modulo the range's size)."""

    def __init__(self, k: int) -> None:
        self.k = k

    def randrange(self, n: int) -> int:
        return self.k % n


def test_pairs_are_even_and_inside_the_range():
    """An odd lower bound starts at the next even port; a pair never runs past the upper bound."""
    r = PortRange(20001, 20008, rng=StartAt(0))
    assert [r.take() for _ in range(3)] == [20002, 20004, 20006]
    with pytest.raises(PortsExhausted):
        r.take()
    assert (r.free, r.in_use, r.size) == (0, 3, 3)


def test_the_queue_starts_at_a_random_pair_and_runs_round_the_range():
    """The first pair is the random source's pick; the rest follow it and wrap round to the range's start, so
    every pair is handed out once before any twice."""
    r = PortRange(20000, 20009, rng=StartAt(3))
    assert [r.take() for _ in range(5)] == [20006, 20008, 20000, 20002, 20004]


def test_two_relays_on_one_range_on_one_host_both_get_ports():
    """Two nodes on one host with the same RTP range: the second does not begin where the first holds
    twenty pairs in a row (more than the relay's bind attempts), so both open calls (the random sources are
    fixed here to those two starts; the default one is seeded from the OS)."""
    lo, hi = random_range(120)
    first = Relay(reactor, "127.0.0.1", lo, hi, 60, port_rng=StartAt(0))
    second = Relay(reactor, "127.0.0.1", lo, hi, 60, port_rng=StartAt(30))
    try:
        held = [first.open_session() for _ in range(10)]          # 20 pairs from the range's start
        assert {s.leg_a.local_port for s in held} | {s.leg_b.local_port for s in held} == set(range(lo, lo + 40, 2))
        other = second.open_session()
        assert other.leg_a.local_port == lo + 60 and other.leg_b.local_port == lo + 62
        with pytest.raises(PortsExhausted):          # what a second node starting where the first did gets
            Relay(reactor, "127.0.0.1", lo, hi, 60, port_rng=StartAt(0)).open_session()
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("pairs", [1, 3, BIND_ATTEMPTS + 4])
def test_a_range_held_by_others_says_how_often_it_tried(pairs):
    """Every pair of the range held by another process: PortsExhausted says how many pairs were tried (the
    range's size when it is smaller than BIND_ATTEMPTS), and every pair is back in the range."""
    lo, _ = random_range(2 * pairs)
    held = [s for p in range(lo, lo + 2 * pairs, 2) for s in bind_pair("127.0.0.1", p)]
    try:
        r = PortRange(lo, lo + 2 * pairs - 1)
        with pytest.raises(PortsExhausted) as raised:
            bind_next_pair(r, "127.0.0.1")
        tries = min(pairs, BIND_ATTEMPTS)
        assert str(raised.value) == (f"could not bind an RTP port pair on 127.0.0.1 after {tries} "
                                     f"{'try' if tries == 1 else 'tries'} (other processes hold them)")
        assert (r.free, r.in_use) == (pairs, 0)
    finally:
        for s in held:
            s.close()


def test_freed_pair_is_not_reused_at_once():
    """A pair given back goes behind the other free pairs, so late packets of an old call reach nobody."""
    r = PortRange(30000, 30009)
    first = r.take()
    r.give_back(first)
    r.give_back(first)                 # twice is harmless
    assert r.take() != first
    assert r.free == 4


@pytest.mark.parametrize("lo, hi", [(0, 10), (5000, 5000), (6000, 5000), (65535, 65535)])
def test_ranges_without_a_pair_are_refused(lo, hi):
    """A range that holds no even/odd pair is a ValueError at start, not a failure on the first call."""
    with pytest.raises(ValueError):
        PortRange(lo, hi)


def test_a_closed_socket_leaves_the_poller_and_its_descriptor_can_be_read_again():
    """close_socket closes without epoll_ctl: the kernel drops the closed descriptor from the epoll set,
    so the next socket on the same descriptor number registers and is read (not a stale entry, not an
    EEXIST), and the closed one is never handled again."""
    poller = SocketPoller()
    try:
        got: list[tuple[str, bytes]] = []
        old_a, old_b = bind_pair("127.0.0.1", 0)
        fd = old_a.fileno()
        poller.add(old_a, lambda: got.append(("old", old_a.recv(2048))))
        poller.close_socket(old_a)
        old_b.close()
        new_a, new_b = bind_pair("127.0.0.1", 0)
        assert new_a.fileno() == fd                 # the descriptor number is reused
        poller.add(new_a, lambda: got.append(("new", new_a.recv(2048))))
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.sendto(b"x" * 12, new_a.getsockname())
        select.select([poller], [], [], 2)
        poller.doRead()
        assert got == [("new", b"x" * 12)]
        with pytest.raises(BlockingIOError):         # opened non-blocking
            new_b.recvfrom(2048)
        for s in (new_a, new_b, sender):
            s.close()
    finally:
        poller.connectionLost(None)


def test_a_twin_gets_its_peers_datagrams_the_listener_the_rest_and_nobody_joins_the_port():
    """connect_twin: on the listener's port, the twin receives what its peer sends and sends from that port;
    datagrams from anyone else still reach the listener; afterwards no third socket can bind the port,
    with SO_REUSEADDR or without."""
    listener, rtcp = bind_pair("127.0.0.1", 0)
    peer, other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    twin = None
    try:
        for s in (peer, other):
            s.bind(("127.0.0.1", 0))
            s.settimeout(2)
        twin = connect_twin(listener, peer.getsockname())
        port = listener.getsockname()
        peer.sendto(b"from peer", port)
        other.sendto(b"from other", port)
        select.select([twin], [], [], 2)
        assert twin.recvfrom(2048) == (b"from peer", peer.getsockname())
        select.select([listener], [], [], 2)
        assert listener.recvfrom(2048) == (b"from other", other.getsockname())
        twin.send(b"reply")
        assert peer.recvfrom(2048) == (b"reply", port)
        for reuse in (0, 1):
            third = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            third.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, reuse)
            with pytest.raises(OSError):
                third.bind(port)
            third.close()
    finally:
        for s in (listener, rtcp, peer, other, twin):
            if s is not None:
                s.close()
