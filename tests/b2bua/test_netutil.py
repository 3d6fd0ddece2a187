"""b2bua.netutil.free_port: a port a peer binds later, never one the kernel may hand out meanwhile."""

from __future__ import annotations

import random
import socket

from b2bua.netutil import _candidates, ephemeral_range, free_port


def test_free_ports_lie_outside_the_kernels_ephemeral_range_and_bind_for_udp_and_tcp():
    """20 picks: none in the ephemeral range nor in the example's RTP range; each binds UDP and TCP."""
    low, high = ephemeral_range()
    for port in (free_port(rng=random.Random(seed)) for seed in range(20)):
        assert not low <= port <= high and not 20000 <= port <= 29999 and port >= 10000
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            udp.bind(("127.0.0.1", port))
            tcp.bind(("127.0.0.1", port))


def test_candidate_ranges_leave_out_the_ephemeral_and_avoided_ranges():
    assert _candidates((32768, 60999)) == [range(10000, 20000), range(30000, 32768), range(61000, 65536)]
    assert _candidates((15000, 65535)) == [range(10000, 15000)]
    assert _candidates((1024, 65535)) == []      # nothing left: free_port falls back to port 0


def test_a_taken_port_is_not_given(monkeypatch):
    """A port already bound is skipped (the next pick is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", free_port()))
        taken = busy.getsockname()[1]

        class Picks(random.Random):
            def __init__(self):
                super().__init__(1)
                self.first = True

            def choice(self, seq):
                if self.first:
                    self.first = False
                    return taken
                return super().choice(seq)
        assert free_port(rng=Picks()) != taken
