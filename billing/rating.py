"""The rater: what a call costs, and how long a balance lasts. Pure functions.

No I/O, no clock, no floats: tariffs are exact ``Decimal`` amounts per minute,
money is integer cents, durations are integer seconds.

Rules every function here follows:

* **Billed seconds** come from the increments: a call of ``d`` seconds (``d > 0``)
  is billed ``first_s``, then whole ``next_s`` units (60/60 bills whole
  minutes, 1/1 every second, 30/6 thirty seconds then six-second steps). A call
  of 0 s is billed 0 s and costs nothing, not even the connect charge. The
  billed values ``0, first_s, first_s + next_s, ...`` are the *boundaries*.
* **The charge** of a billed duration is computed exactly from the whole:
  ``per_minute * billed_s / 60`` (the first-caller tariff for its first
  ``period_s`` seconds, the ordinary tariff after that, in the same sum), plus
  the connect charge, and rounded **once** to cents, **half-up** (0.5 cent goes
  up, as is customary). The rounded charge is never decreasing in the billed
  duration, because the exact sum is not and half-up rounding is monotone.
* **Never more than the caller can pay**: every question "how long can this
  balance go" is answered with the *rounded* charge, so the debits that follow
  from an answer fit in the balance to the cent.
* **Ticks add up**: the next debit of a running call is the charge of the whole
  call up to the next boundary minus what was already debited, so the debits
  of a call always sum to the charge of its last paid boundary, and a settlement
  that charges ``call_charge_cents(tariff, duration_s)`` is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from .profile import BillingProfile, CallerClass, FirstCallerTariff, Increment

#: the longest call any question here is asked about (a day); callers never get more
MAX_CALL_S = 86400

_CENT = Decimal(1)
_SIXTY = Decimal(60)
_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Tariff:
    """What one call is rated with: a snapshot taken when the session opens.

    ``first_caller`` is set only when this call gets the first-caller tariff.
    """

    per_minute: Decimal
    increment: Increment
    connect_charge_cents: int = 0
    first_caller: FirstCallerTariff | None = None

    def __post_init__(self) -> None:
        if self.increment.first_s < 1 or self.increment.next_s < 1:
            raise ValueError(f"increments must be at least 1 s, not {self.increment}")
        if self.per_minute < 0 or self.connect_charge_cents < 0:
            raise ValueError("tariffs and connect charges cannot be negative")
        if self.first_caller is not None and (self.first_caller.per_minute < 0
                                              or self.first_caller.period_s < 0):
            raise ValueError("a first-caller tariff cannot be negative")


def tariff_for(profile: BillingProfile, caller_class: CallerClass, *, first_call: bool) -> Tariff:
    """The tariff of a call under ``profile``; ``first_call`` gives the first-caller tariff, if any."""
    return Tariff(
        per_minute=profile.per_minute(caller_class),
        increment=profile.increment,
        connect_charge_cents=profile.connect_charge_cents,
        first_caller=profile.first_caller if first_call else None,
    )


# -- boundaries ---------------------------------------------------------------

def billed_s(increment: Increment, duration_s: int) -> int:
    """The billed seconds of a call that lasted ``duration_s``: the first boundary at or after it."""
    if duration_s <= 0:
        return 0
    if duration_s <= increment.first_s:
        return increment.first_s
    over = duration_s - increment.first_s
    return increment.first_s + -(-over // increment.next_s) * increment.next_s


def boundary_at_or_after(increment: Increment, s: int) -> int:
    """The smallest boundary ``>= s`` (same as :func:`billed_s`)."""
    return billed_s(increment, s)


def boundary_at_or_before(increment: Increment, s: int) -> int:
    """The largest boundary ``<= s``."""
    if s < increment.first_s:
        return 0
    return increment.first_s + (s - increment.first_s) // increment.next_s * increment.next_s


def reservation_target_s(increment: Increment, paid_s: int, ahead_s: int) -> int:
    """Where a debit ahead from the boundary ``paid_s`` should reach: the first boundary at least
    ``ahead_s`` (>= 1) further. For 60/60 and ``ahead_s`` <= 60 that is one increment; for 1/1 it is a
    chunk of ``ahead_s`` seconds, so that the store is not asked every second."""
    return boundary_at_or_after(increment, paid_s + max(1, ahead_s))


# -- charges ------------------------------------------------------------------

def exact_charge_cents(tariff: Tariff, billed: int) -> Decimal:
    """The unrounded charge in cents of ``billed`` seconds (a boundary), connect charge included."""
    if billed <= 0:
        return Decimal(0)
    fc = tariff.first_caller
    if fc is not None:
        cheap_s = min(billed, fc.period_s)
        amount = fc.per_minute * cheap_s + tariff.per_minute * (billed - cheap_s)
    else:
        amount = tariff.per_minute * billed
    return amount * _HUNDRED / _SIXTY + tariff.connect_charge_cents


def charge_cents(tariff: Tariff, billed: int) -> int:
    """The charge of ``billed`` seconds, rounded once, half-up, to whole cents."""
    return int(exact_charge_cents(tariff, billed).quantize(_CENT, rounding=ROUND_HALF_UP))


def call_charge_cents(tariff: Tariff, duration_s: int) -> int:
    """The charge of a call that lasted ``duration_s`` seconds of charged time."""
    return charge_cents(tariff, billed_s(tariff.increment, duration_s))


def next_debit_cents(tariff: Tariff, debited_cents: int, target_s: int) -> int:
    """The debit that takes a call already debited ``debited_cents`` to the boundary ``target_s``."""
    return charge_cents(tariff, target_s) - debited_cents


# -- how far a balance goes ---------------------------------------------------

def affordable_s(tariff: Tariff, budget_cents: int, *, max_s: int = MAX_CALL_S) -> int:
    """The last boundary (at most ``max_s``) whose charge fits in ``budget_cents``; 0 when even the
    first increment (with the connect charge) does not.

    For a running call, ``budget_cents`` is what it has been debited plus the balance left: the
    answer is where its credit runs out, counted from the start of charging. A budget of 0 buys nothing,
    except under a first-caller offer: there it reaches the boundaries that cost nothing (its free minutes).
    """
    inc = tariff.increment
    if budget_cents < 0 or (budget_cents == 0 and tariff.first_caller is None):
        return 0
    if inc.first_s > max_s or charge_cents(tariff, inc.first_s) > budget_cents:
        return 0
    # boundaries are first_s + k * next_s for k in [0, k_max]; charge is monotone in k
    k_max = (max_s - inc.first_s) // inc.next_s
    lo, hi = 0, k_max  # lo is affordable; find the largest affordable k
    if charge_cents(tariff, inc.first_s + hi * inc.next_s) <= budget_cents:
        return inc.first_s + hi * inc.next_s
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if charge_cents(tariff, inc.first_s + mid * inc.next_s) <= budget_cents:
            lo = mid
        else:
            hi = mid
    return inc.first_s + lo * inc.next_s


def can_start(tariff: Tariff, balance_cents: int) -> bool:
    """Whether a balance pays the first increment and the connect charge (free minutes need none)."""
    return affordable_s(tariff, balance_cents) > 0


def minutes_callable(tariff: Tariff, balance_cents: int, *, max_s: int = MAX_CALL_S) -> int:
    """The whole minutes ``balance_cents`` buys: a promise, since a call of that many minutes is
    billed at most the boundary :func:`affordable_s` returns, and that boundary is paid for."""
    return affordable_s(tariff, balance_cents, max_s=max_s) // 60
