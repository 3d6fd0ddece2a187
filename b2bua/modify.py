"""In-dialog session changes (re-INVITE, UPDATE) on one leg and across the two: the rules, sans-I/O.

A leg may have one offer/answer exchange and one INVITE transaction in each
direction at a time.  :func:`conflict` says how a re-INVITE or UPDATE that
arrives while something is still pending on its leg is answered, from
:data:`PENDING_RULES` (checked in order, first match wins):

* RFC 3261 §14.2: a re-INVITE while the peer's previous INVITE on that dialog
  has no final response yet gets 500 with ``Retry-After`` (0-10 s, at random);
  while our own re-INVITE on it is pending, 491.
* RFC 3311 §5.2: an UPDATE while the peer's previous UPDATE has no final
  response gets 500 with ``Retry-After``; an UPDATE with an offer while an
  offer of ours is unanswered gets 491, while an offer of the peer's is
  unanswered 500 with ``Retry-After``.  An INVITE meeting an unanswered offer
  in an UPDATE is treated alike (RFC 6337 §3.2).

:func:`relay_status` maps the other leg's final answer to a relayed change
onto the answer the asking leg gets: 2xx -> 200, 491 -> 491 (the asker
retries), no answer (408) -> 408, 5xx -> 500, anything else -> 488 (the
session stays as it was).

Pinned by ``tests/b2bua/test_calls_modify.py``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: what can be pending on a leg
UAS_INVITE = "uas_invite"      # the peer's (re-)INVITE, not finally answered by us
UAS_UPDATE = "uas_update"      # the peer's UPDATE, not finally answered by us
UAS_OFFER = "uas_offer"        # an offer from the peer we have not answered
UAC_INVITE = "uac_invite"      # our re-INVITE, no final response yet
UAC_OFFER = "uac_offer"        # an offer of ours not answered yet (in our re-INVITE/UPDATE, or our 2xx awaiting ACK)

#: (incoming method, only when it carries an offer, what is pending) -> status
PENDING_RULES: tuple[tuple[str, bool, str, int], ...] = (
    ("INVITE", False, UAS_INVITE, 500),     # RFC 3261 §14.2
    ("INVITE", False, UAC_INVITE, 491),     # RFC 3261 §14.2
    ("INVITE", True, UAC_OFFER, 491),       # RFC 6337 §3.2: our UPDATE's offer unanswered
    ("INVITE", True, UAS_OFFER, 500),       # RFC 6337 §3.2: the peer's UPDATE offer unanswered
    ("UPDATE", False, UAS_UPDATE, 500),     # RFC 3311 §5.2
    ("UPDATE", True, UAC_OFFER, 491),       # RFC 3311 §5.2
    ("UPDATE", True, UAS_OFFER, 500),       # RFC 3311 §5.2
)

RETRY_AFTER_MAX_S = 10


def conflict(method: str, has_offer: bool, pending: frozenset[str]) -> int | None:
    """The status for a re-INVITE/UPDATE that meets ``pending`` on its leg, or None when it may go on."""
    if not pending:
        return None
    for rule_method, needs_offer, what, status in PENDING_RULES:
        if method == rule_method and (has_offer or not needs_offer) and what in pending:
            return status
    return None


def retry_after(rng: random.Random | None = None) -> str:
    """A ``Retry-After`` value for a 500 to a request that met a pending one: 0 to 10 s at random."""
    return str((rng or random).randint(0, RETRY_AFTER_MAX_S))


def relay_status(status: int) -> int:
    """The asking leg's answer when the other leg answered a relayed change with ``status``."""
    if 200 <= status < 300:
        return 200
    if status in (491, 408):
        return status
    if 500 <= status < 600:
        return 500
    return 488


@dataclass(frozen=True)
class ModifyRequest:
    """A re-INVITE or UPDATE a leg received, as the controller sees it: what it asks, and how to answer it."""

    method: str                 # "INVITE" or "UPDATE"
    transaction_id: str
    offer: bytes | None


@dataclass(frozen=True)
class PendingModify:
    """A change being relayed: who asked (``side`` "a" or "b"), what, and our offer to the other leg."""

    side: str
    request: ModifyRequest
    offer: bytes
