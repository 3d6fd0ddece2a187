"""Admission of new calls: a rate limit per source address, before any work is done for an INVITE.

An INVITE flood from one address must not take the RTP ports, the store's
time and the log from the calls of the carriers we serve.  Each source address
has a token bucket (:class:`SourceRate`): ``per_s`` new INVITEs a second on
average, ``burst`` at once.  An INVITE over the rate is answered 503 with
``Retry-After`` (RFC 3261 §21.5.4) — the seconds until the bucket has a
token again — and nothing else happens for it.

Trusted carriers (``[carriers] trusted``) send every caller's call from a
few addresses, so they have a bucket of their own, unlimited by default
(``[admission] trusted_invites_per_s = 0``).

The table of sources is bounded (``max_sources``, least recently seen
forgotten first): a spoofing flood from many addresses costs memory only up
to that bound.  The whole module is sans-I/O: ``now`` (seconds) is an
argument.  Tests (``tests/b2bua/test_admission.py``) pin the bucket's
arithmetic on plain numbers, the Retry-After, the bound, and that trusted
and untrusted sources are counted apart.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class AdmissionSettings:
    """``[admission]`` of the config: rates of new INVITEs per source address (0: no limit)."""

    invites_per_s: float = 10.0
    invite_burst: int = 20
    trusted_invites_per_s: float = 0.0
    trusted_invite_burst: int = 200
    #: the share of RTP port pairs that calls which only hear a refusal may hold at once
    refusal_ports_percent: int = 20


class SourceRate:
    """A token bucket per source address: :meth:`admit` answers None (go on) or the seconds to wait."""

    def __init__(self, per_s: float, burst: int, *, max_sources: int = 4096) -> None:
        self.per_s = per_s
        self.burst = max(1, burst)
        self.max_sources = max_sources
        #: source -> (tokens after the last update, time of that update)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def admit(self, source: str, now: float) -> float | None:
        """Take a token for one new INVITE from ``source`` at ``now``: None, or seconds until one is there."""
        if self.per_s <= 0:
            return None
        tokens, last = self._buckets.pop(source, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.per_s)
        if tokens >= 1.0:
            self._remember(source, tokens - 1.0, now)
            return None
        self._remember(source, tokens, now)
        return (1.0 - tokens) / self.per_s

    def _remember(self, source: str, tokens: float, now: float) -> None:
        self._buckets[source] = (tokens, now)
        while len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


class Admission:
    """The rate limits of new INVITEs: one bucket table for untrusted sources, one for trusted carriers."""

    def __init__(self, settings: AdmissionSettings) -> None:
        self.settings = settings
        self._untrusted = SourceRate(settings.invites_per_s, settings.invite_burst)
        self._trusted = SourceRate(settings.trusted_invites_per_s, settings.trusted_invite_burst)

    def retry_after_s(self, source: str, trusted: bool, now: float) -> int | None:
        """None when a new INVITE from ``source`` may go on, else the whole seconds for ``Retry-After``."""
        wait_s = (self._trusted if trusted else self._untrusted).admit(source, now)
        return None if wait_s is None else max(1, math.ceil(wait_s))
