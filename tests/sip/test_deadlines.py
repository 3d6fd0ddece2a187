"""The lazy-deletion deadline heap that the transaction layer and the endpoint's 2xx retransmissions share."""

from __future__ import annotations

from b2bua.sip.deadlines import DeadlineHeap


def test_due_first_and_only_when_due():
    """Entries come out in deadline order (ties in the order pushed), and only once ``now`` reaches them."""
    heap = DeadlineHeap(lambda deadline, thing: True)
    for deadline, thing in ((3.0, "c"), (1.0, "a"), (1.0, "b")):
        heap.push(deadline, thing)
    assert heap.first() == (1.0, "a")
    assert heap.pop_due(0.5) is None
    assert [heap.pop_due(1.0), heap.pop_due(1.0), heap.pop_due(2.0)] == ["a", "b", None]
    assert heap.pop_due(3.0) == "c" and heap.first() is None


def test_entries_that_no_longer_hold_are_dropped_when_they_come_up_and_reported():
    """A thing gone, or whose deadline moved, is skipped; ``dropped`` hears of each stale entry, and may push
    the thing again (a deadline that moved without a push)."""
    deadlines = {"a": 1.0, "b": 2.0}
    dropped = []

    def on_drop(deadline, thing):
        dropped.append((deadline, thing))
        if thing in deadlines:
            heap.push(deadlines[thing], thing)

    heap = DeadlineHeap(lambda deadline, thing: deadlines.get(thing) == deadline, on_drop)
    heap.push(1.0, "a")
    heap.push(2.0, "b")
    deadlines["a"] = 5.0          # moved, not pushed
    del deadlines["b"]            # gone
    assert heap.first() == (5.0, "a")
    assert dropped == [(1.0, "a"), (2.0, "b")]
    assert heap.pop_due(5.0) == "a" and heap.first() is None
