"""The customer PIN of a caller whose number is withheld: the keys typed, the tries, the guard, the lookup.

The call (:mod:`b2bua.call`) asks for the PIN when its profile takes one
instead of a shown number.  :class:`PinEntry` collects the caller's keys (RFC 4733
events or INFO, :mod:`b2bua.info`; ``#`` ends a PIN, ``*`` starts it again, 16
digits at most) and checks a typed PIN in the order the guard needs
(``billing.pinguard.PinGuard``: the attempt is counted before the store is
asked, so that guessing is limited across calls and nodes):

``attempt`` -> ``lookup`` -> ``wrong`` or ``right``,

and reports one :class:`PinOutcome`.  A PIN that opens another account than
the one the call names (``account``) is wrong.  The call owns the timer, the
prompts and what follows (billing opened on the number found, or the refusal).

Pinned by ``tests/b2bua/test_call.py`` (typing, wrong tries, the timeout) and
``tests/hostile/test_pin_guessing.py`` (the guard across calls).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

log = Logger()

#: the outcomes of a check
RIGHT = "right"            # the PIN names the account: ``number``
WRONG = "wrong"            # it names none (or another account); another try may be left
LOCKED = "locked"          # this source (or account) may not try now
GONE = "gone"              # the call no longer waits for a PIN (the caller hung up meanwhile)


@dataclass(frozen=True)
class PinOutcome:
    """What a typed PIN came to; ``after_wrong``: the lock came with this wrong PIN (said as a wrong try)."""

    kind: str
    number: str | None = None
    after_wrong: bool = False


class PinGate(Protocol):
    """The limit on guessing PINs across calls and nodes (``billing.pinguard.PinGuard``; a fake in tests)."""

    def locked(self, profile: str, source: str, account: str | None) -> Deferred:
        """Fires True when this source (or account) may not type a PIN now."""

    def attempt(self, profile: str, source: str, account: str | None, call_id: str) -> Deferred:
        """Counts a PIN about to be looked up; fires with the attempt, or None when locked."""

    def wrong(self, attempt) -> Deferred:
        """The attempt's PIN was wrong; fires True when that locked the source or account."""

    def right(self, attempt) -> Deferred:
        """The attempt's PIN was right."""


class PinEntry:
    """One call's PIN entry: the keys typed so far, the tries used, and the checks (see the module).

    Every call of a node that takes PINs has one, held as long as the call: slots, not an instance dict (105 B
    an entry instead of 154, by tracemalloc; bench/memory.py --by-site: call.py:119)."""

    __slots__ = ("_lookup", "_gate", "_profile", "source", "account", "_call_id", "_log_id", "digits", "tries")

    #: tries before the call ends, and seconds to type a PIN and the hash
    TRIES = 3
    TIMEOUT_S = 20
    MAX_DIGITS = 16

    def __init__(self, *, lookup: Callable[[str, str], Deferred], gate: PinGate | None, profile: str,
                 source: str, account: str | None, call_id: str, log_id: str) -> None:
        self._lookup = lookup
        self._gate = gate
        self._profile = profile
        #: where the INVITE came from, and the account the call names that only its own PIN may open
        self.source = source
        self.account = account
        self._call_id = call_id
        self._log_id = log_id
        self.digits = ""
        self.tries = 0

    @property
    def last_try(self) -> bool:
        """Whether the tries are used up."""
        return self.tries >= self.TRIES

    def key(self, digit: str) -> str | None:
        """A key pressed: the PIN typed when it is ``#``, else None (the key is kept, or ``*`` clears)."""
        if digit == "#":
            return self.take_typed()
        if digit.isdigit() and len(self.digits) < self.MAX_DIGITS:
            self.digits += digit
        elif digit == "*":
            self.digits = ""
        return None

    def take_typed(self) -> str:
        """What was typed so far (the timeout's PIN), and start again."""
        pin, self.digits = self.digits, ""
        return pin

    def locked(self) -> Deferred:
        """Fires True when this source (or account) may not even be asked for a PIN now."""
        if self._gate is None:
            return succeed(False)
        return self._gate.locked(self._profile, self.source, self.account)

    def check(self, pin: str, wanted: Callable[[], bool]) -> Deferred:
        """Check ``pin`` (a try of this call); fires with a :class:`PinOutcome`. ``wanted()`` is asked between
        the steps: once the call no longer waits the outcome is ``GONE``, and a PIN not yet counted is not
        looked up; one the guard counted already is still looked up and settled (``wrong`` or ``right``)."""
        self.tries += 1
        if not pin:
            return succeed(PinOutcome(WRONG))      # nothing typed: a try of this call, but no guess to count
        if self._gate is None:
            return self._look_up(None, pin, wanted)
        d = self._gate.attempt(self._profile, self.source, self.account, self._call_id)
        return d.addCallback(self._admitted, pin, wanted)

    def _admitted(self, attempt, pin: str, wanted: Callable[[], bool]):
        if attempt is None:
            return PinOutcome(LOCKED) if wanted() else PinOutcome(GONE)
        # counted is settled, even for a call that no longer waits: an attempt left pending would count
        # against its source until it ages out, and the lockout it completes would never be audited
        return self._look_up(attempt, pin, wanted)

    def _look_up(self, attempt, pin: str, wanted: Callable[[], bool]) -> Deferred:
        return self._lookup(self._profile, pin).addCallback(self._found, attempt, wanted)

    def _found(self, number: str | None, attempt, wanted: Callable[[], bool]):
        if self.account is not None and number != self.account:
            number = None                 # another account's PIN does not open the account the call names
        if number is None:
            if attempt is None:
                return PinOutcome(WRONG)
            return self._gate.wrong(attempt).addCallback(self._counted, wanted)
        if attempt is not None:
            self._gate.right(attempt).addErrback(
                lambda f: log.failure("call {call_id}: PIN attempt not marked right (it counts as wrong)", f,
                                      call_id=self._log_id))
        return PinOutcome(RIGHT, number) if wanted() else PinOutcome(GONE)

    @staticmethod
    def _counted(locked: bool, wanted: Callable[[], bool]) -> PinOutcome:
        if not wanted():
            return PinOutcome(GONE)
        return PinOutcome(LOCKED, after_wrong=True) if locked else PinOutcome(WRONG)
