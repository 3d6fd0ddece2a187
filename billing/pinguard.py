"""How many wrong customer PINs a source address, or an account, may type: the rule and its guard.

A caller whose number is withheld types the customer PIN (``b2bua.call``). Each call allows a few
tries, but parallel and repeated calls would each bring their own; so every PIN typed is also an
attempt in the shared store (:mod:`billing.db.pins`), under the address the call came from and,
when the call names an account, that account. :class:`PinRule` (pure, on plain millisecond
numbers) says when those attempts lock: ``max_failures`` that are not right within ``window_s`` of
each other lock for ``lockout_s`` from the last of them. While locked, a call is not asked for a PIN
and a PIN typed is not looked up. A right PIN clears nothing: an attacker holding one valid PIN
must not reset the count of the PINs it guessed.

An attempt is counted *before* its PIN is looked up (as ``pending``; then ``wrong`` or ``right``),
under one lock per source and per account on PostgreSQL, so parallel calls from one source, even on
several nodes, cannot look up more than ``max_failures`` guesses between them.

:class:`PinGuard` is the node's side: it runs those steps through the store and counts lockouts
(``prepaid_pin_lockouts_total``); the lockout itself writes an audit row in its own transaction.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from twisted.internet.defer import Deferred

from .db import pins as _pins
from .db.pins import PinAttempt

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class PinRule:
    """``max_failures`` wrong PINs within ``window_s`` of each other lock for ``lockout_s``."""

    max_failures: int = 5
    window_s: int = 900
    lockout_s: int = 1800

    def locked_until_ms(self, failures_ms: Sequence[int]) -> int | None:
        """When the last lockout these failures earned ends (None: they earned none)."""
        times = sorted(failures_ms)
        n = self.max_failures
        window_ms = self.window_s * 1000
        for i in range(len(times) - 1, n - 2, -1):      # the latest run of n within the window decides
            if times[i] - times[i - n + 1] < window_ms:
                return times[i] + self.lockout_s * 1000
        return None

    def locked(self, failures_ms: Sequence[int], now_ms: int) -> bool:
        """Whether these failures lock at ``now_ms``."""
        until = self.locked_until_ms(failures_ms)
        return until is not None and now_ms < until

    def reach_ms(self) -> int:
        """How far back a failure can still matter: older ones may be forgotten."""
        return (self.window_s + self.lockout_s) * 1000


class PinGuard:
    """The guessing limit of this node's calls, kept in the shared store (``b2bua.pinentry.PinGate``)."""

    def __init__(self, store, rule: Callable[[], PinRule], *, actor: str,
                 carrier_rule: Callable[[], PinRule] | None = None,
                 carriers: Callable[[], Iterable[IPNetwork]] = lambda: ()) -> None:
        self.store = store
        self.rule = rule                 # read at each use: a reload changes the limit at once
        #: the limit for an address of ``carriers`` (the trusted ones: every withheld caller of a carrier
        #: arrives from its few addresses, so they get a limit of their own, far above one caller's)
        self.carrier_rule = carrier_rule or rule
        self.carriers = carriers
        self.actor = actor
        self.lockouts = 0

    def rule_for(self, source: str) -> PinRule:
        """The rule for attempts from ``source``: the carriers' where it is one of theirs."""
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return self.rule()
        if any(address in network for network in self.carriers()):
            return self.carrier_rule()
        return self.rule()

    def locked(self, profile: str, source: str, account: str | None) -> Deferred:
        """Fires True when calls from ``source`` (or for ``account``) may not type a PIN now."""
        return self.store.run(_pins.locked, self.rule_for(source), profile, source, account,
                              now_ms=self.store.now_ms())

    def attempt(self, profile: str, source: str, account: str | None, call_id: str) -> Deferred:
        """Count one PIN about to be looked up; fires with its :class:`PinAttempt`, or None when locked."""
        return self.store.run(_pins.attempt, self.rule_for(source), profile, source, account, call_id,
                              now_ms=self.store.now_ms())

    def wrong(self, attempt: PinAttempt) -> Deferred:
        """The PIN was wrong; fires True when that locked its source or account (audited, counted)."""
        d = self.store.run(_pins.wrong, self.rule_for(attempt.source), attempt, now_ms=self.store.now_ms(),
                           actor=self.actor)
        return d.addCallback(self._counted)

    def right(self, attempt: PinAttempt) -> Deferred:
        """The PIN named the account: this attempt no longer counts (the others still do)."""
        return self.store.run(_pins.right, attempt)

    def _counted(self, verdict: _pins.WrongPin) -> bool:
        if verdict.lockout:
            self.lockouts += 1
        return verdict.locked
