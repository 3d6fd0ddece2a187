"""Reliable provisional responses (RFC 3262, 100rel/PRACK) on the carrier's leg, sans-I/O.

:func:`wants_100rel` says whether the carrier's INVITE asks for them (``Require``
or ``Supported: 100rel``); :func:`early_media_headers` gives the headers of a
reliable 183 (``Require: 100rel``, ``RSeq``, and ``P-Early-Media: sendrecv``
when the carrier sent ``P-Early-Media: supported``, RFC 5009).
:class:`ReliableProvisional` is one unacknowledged reliable provisional: it
says when to retransmit (T1, doubling up to T2, §3 of RFC 3262), whether a
PRACK's ``RAck`` acknowledges it, and when to give up (64*T1 without PRACK:
the call is aborted).  The leg drives it on the injected reactor, one at a
time: a further reliable provisional waits in the leg's queue for the PRACK,
and is dropped when the final answer goes first.

Pinned by ``tests/b2bua/test_prack_leg.py``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

T1_S = 0.5
T2_S = 4.0


def _tokens(values: list[str]) -> set[str]:
    return {t.strip().lower() for v in values for t in v.split(",") if t.strip()}


def wants_100rel(invite) -> bool:
    """Whether the INVITE requires or supports reliable provisional responses."""
    headers = invite.headers
    return "100rel" in _tokens(headers.get_all("require")) | _tokens(headers.get_all("supported"))


def wants_p_early_media(invite) -> bool:
    """Whether the carrier sent ``P-Early-Media: supported`` (RFC 5009)."""
    return "supported" in _tokens(invite.headers.get_all("p-early-media"))


def first_rseq(rng: random.Random | None = None) -> int:
    """A random first RSeq, 1 .. 2**31 - 1 (RFC 3262 §3)."""
    return (rng or random).randint(1, 2**31 - 1)


def parse_rack(value: str | None) -> tuple[int, int, str] | None:
    """``RAck: <rseq> <cseq> <method>`` as numbers and upper-case method, or None when malformed."""
    if not value:
        return None
    parts = value.split()
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1]), parts[2].upper()


@dataclass
class ReliableProvisional:
    """One reliable provisional response waiting for its PRACK."""

    rseq: int
    invite_cseq: int
    sent_at: float
    t1_s: float = T1_S
    t2_s: float = T2_S
    interval_s: float = field(init=False)
    next_at: float = field(init=False)
    acknowledged: bool = False

    def __post_init__(self) -> None:
        self.interval_s = self.t1_s
        self.next_at = self.sent_at + self.t1_s

    @property
    def give_up_at(self) -> float:
        return self.sent_at + 64 * self.t1_s

    def due(self, now: float) -> str:
        """What to do at ``now``: ``"retransmit"`` (then ask again at :attr:`next_at`), ``"give_up"`` or ``"wait"``."""
        if self.acknowledged:
            return "wait"
        if now >= self.give_up_at:
            return "give_up"
        if now >= self.next_at:
            self.interval_s = min(self.interval_s * 2, self.t2_s)
            self.next_at = min(now + self.interval_s, self.give_up_at)
            return "retransmit"
        return "wait"

    def matches(self, rack: tuple[int, int, str] | None) -> bool:
        """Whether a PRACK with this RAck acknowledges us."""
        return rack is not None and rack == (self.rseq, self.invite_cseq, "INVITE")

    def headers(self, p_early_media: bool) -> list[tuple[str, str]]:
        items = [("Require", "100rel"), ("RSeq", str(self.rseq))]
        if p_early_media:
            items.append(("P-Early-Media", "sendrecv"))
        return items
