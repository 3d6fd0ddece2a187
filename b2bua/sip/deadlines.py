"""Deadlines of things whose deadline moves and that go away: one heap with lazy deletion.

The transaction layer keeps its transactions' next timers here, the endpoint
its 2xx retransmissions. A thing's entry is pushed whenever its deadline
changes; an entry that no longer holds (the thing is gone, or its deadline
moved) is not searched for and removed, but dropped when it comes to the top.
Pushing is O(log n), finding what is due first amortised O(1) per entry.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class DeadlineHeap(Generic[T]):
    """``holds(deadline, thing)`` says whether an entry still holds; ``dropped(deadline, thing)``, if given,
    hears of each entry dropped as stale (a thing whose deadline moved unannounced is pushed again there)."""

    def __init__(self, holds: Callable[[float, T], bool],
                 dropped: Callable[[float, T], None] | None = None) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()        # ties in deadline keep their order; things are never compared
        self._holds = holds
        self._dropped = dropped

    def push(self, deadline: float, thing: T) -> None:
        heapq.heappush(self._heap, (deadline, next(self._seq), thing))

    def first(self) -> tuple[float, T] | None:
        """The entry due first that still holds, as (deadline, thing), or None; stale entries on top are dropped."""
        heap = self._heap
        while heap:
            deadline, _, thing = heap[0]
            if self._holds(deadline, thing):
                return deadline, thing
            heapq.heappop(heap)
            if self._dropped is not None:
                self._dropped(deadline, thing)
        return None

    def pop_due(self, now: float) -> T | None:
        """The thing due first if its deadline is at or before ``now`` (its entry removed), else None."""
        top = self.first()
        if top is None or top[0] > now:
            return None
        heapq.heappop(self._heap)
        return top[1]

    def __len__(self) -> int:
        """Entries, stale ones included (a bound, not a count of live things)."""
        return len(self._heap)
