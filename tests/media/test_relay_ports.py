"""The RTP port range: even/odd pairs, exhaustion, and freed pairs going to the back of the queue."""

from __future__ import annotations

import pytest

from media.ports import PortRange, PortsExhausted


def test_pairs_are_even_and_inside_the_range():
    """An odd lower bound starts at the next even port; a pair never runs past the upper bound."""
    r = PortRange(20001, 20008)
    assert [r.take() for _ in range(3)] == [20002, 20004, 20006]
    with pytest.raises(PortsExhausted):
        r.take()
    assert (r.free, r.in_use, r.size) == (0, 3, 3)


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
