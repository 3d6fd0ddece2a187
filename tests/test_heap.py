"""b2bua.heap: what a node does to the cyclic collector once it serves."""

from __future__ import annotations

import gc
import weakref

import pytest

from b2bua import heap


@pytest.fixture
def collector_restored():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_settle_freezes_what_lives_and_sets_the_thresholds(collector_restored):
    """Objects alive at settle() are frozen (never walked again); the thresholds are the module's; a cycle
    made afterwards is still collected."""
    class Node:
        pass
    kept = Node()
    kept.me = kept
    frozen = heap.settle()
    # another thread (a test's peer, a node's reader) may free a frozen object between two readings
    assert frozen > 1000 and gc.get_freeze_count() > 1000
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, heap.MIDDLE_EVERY, heap.FULL_EVERY)
    assert not any(o is kept for o in gc.get_objects())       # frozen: not in any generation walked
    later = Node()
    later.me = later
    ref = weakref.ref(later)
    del later
    assert ref() is not None                                    # a cycle: reference counting cannot free it
    gc.collect()
    assert ref() is None
