"""Token buckets per client address, on an injected clock (``IReactorTime``).

``allow(key)`` takes one token from ``key``'s bucket: ``rate_per_min``
refill per minute up to ``burst``. The table of buckets is bounded: when it
is full, buckets that are full again (idle clients) are dropped first, then the oldest.
"""

from __future__ import annotations

from collections import OrderedDict


class RateLimiter:
    def __init__(self, clock, rate_per_min: int, *, burst: int | None = None, max_keys: int = 10_000) -> None:
        self.clock = clock
        self.rate_per_s = rate_per_min / 60.0
        self.burst = float(burst if burst is not None else max(1, rate_per_min))
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        now = self.clock.seconds()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate_per_s)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._evict(now)
        return allowed

    def _evict(self, now: float) -> None:
        for key, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate_per_s >= self.burst:
                del self._buckets[key]
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
