"""Call billing sessions: open, charge ahead, warn, cut off, settle. Driven by an injected reactor.

One :class:`CallBilling` per node holds the open sessions. The call controller
asks it to :meth:`CallBilling.open` a session when a call arrives, tells the
session when charging starts (:meth:`CallSession.start_charging`, see
:func:`charging_start_ms`), hears :class:`Warning_` and :class:`Exhausted`
through its :class:`SessionObserver`, and calls :meth:`CallSession.settle` when
the call ends, for whatever reason.

Money rules (see :mod:`billing.rating`):

* The session debits **ahead**: the first increment (and the connect charge) when
  charging starts, then, ``debit_lead_s`` before each paid boundary is reached,
  up to the next boundary at least ``reserve_ahead_s`` further (one increment at
  60/60; a 60 s chunk at 1/1, so the store is not asked every second). Each debit
  is one conditional update with its ledger row (source ``call``, reference
  ``<session id>:<n>``) and the session row, in one transaction: a retried debit
  never doubles, and a debit the balance does not cover changes nothing.
* Several sessions of one caller share the balance. None can take it below
  zero; when a debit ahead fails, the session's credit ends at the boundary it
  has already paid.
* The credit's end is ``affordable_s(debited + balance)`` from the start of
  charging. ``Exhausted`` fires there, ``Warning_`` ``warn_before_s`` before it
  (at once when charging starts with less credit than that).
* A change of the account's balance (top-up, manual, API, another call's debit or
  refund) recomputes the end at once (:class:`CreditEnds` tells the controller
  the new end): the pending cut-off moves, and the warning is
  re-armed when the new warning time lies in the future. So a warning already
  given is given again if a later top-up is again used up to within
  ``warn_before_s``; a top-up that leaves the end within ``warn_before_s`` does not
  repeat a warning already given.
* What made the balance rise is read from the ledger, not guessed from the
  balance: a rise asks the store for the credits booked to the account since the
  session opened (:meth:`SessionStore.credits_since_open`), and the controller
  hears :class:`TopUp` for top-ups (payments, manual, API, positive corrections)
  and :class:`Refund` for the settlement refunds of the caller's other calls.
  A refund is no top-up: it is not announced to the caller as one.
* Balance news reaches this node only for changes made through its own store
  object. A top-up booked elsewhere (another node, ``prepaid topup``) is found
  by one extra conditional debit of one increment, ``debit_lead_s`` before the
  last paid boundary: refused, it changes nothing; applied, the call goes on.
* ``settle`` charges exactly the billed duration (any started second counts:
  milliseconds are rounded up to seconds, then to the increments; capped at the
  paid boundary) and refunds the rest of what was debited as a ``call_refund``;
  it is idempotent, and safe against a reconciler on another node.
* Each open session holds a lease, renewed by its debits and, for all sessions
  of this node at once, every ``renew_interval_s`` (``[store] renew_interval_s``,
  5 s in the example config; a third of the lease when not given). A session
  whose lease runs out is settled by :mod:`billing.reconcile` up to its last
  renewal, so a node that dies mid-call leaves at most that much talk unbilled.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Callable, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from .profile import BillingProfile, CallerClass, ChargingStart
from .rating import (
    MAX_CALL_S, Tariff, affordable_s, boundary_at_or_after, minutes_callable,
    next_debit_cents, reservation_target_s,
)

_log = Logger(namespace="billing.session")

# -- what the store gives and takes (billing/db/sessions.py implements it) ----


@dataclass(frozen=True)
class OpenRequest:
    """Everything needed to open a session row, in one transaction with the first-caller list."""

    session_id: str
    profile: BillingProfile
    number: str
    caller_class: CallerClass
    call_id: str
    node_id: str
    now_ms: int
    lease_until_ms: int
    max_call_s: int


@dataclass(frozen=True)
class Opened:
    """The store's answer to :class:`OpenRequest`. ``refused`` is None when the row was created."""

    session_id: str
    tariff: Tariff
    balance_cents: int
    first_call: bool
    refused: str | None = None


@dataclass(frozen=True)
class DebitAhead:
    """One debit ahead: take ``amount_cents`` and record that ``paid_s`` is paid (``debited_cents`` in all).

    Every debit carries ``charging_started_ms``: the store records when charging started in the same
    transaction (also when the debit is refused), so starting costs no transaction of its own.
    """

    session_id: str
    seq: int
    amount_cents: int
    paid_s: int
    debited_cents: int
    now_ms: int
    lease_until_ms: int
    charging_started_ms: int | None = None


@dataclass(frozen=True)
class DebitOutcome:
    """Whether the debit was applied, and the account's balance afterwards (or as it stands)."""

    applied: bool
    balance_cents: int
    reason: str = ""


@dataclass(frozen=True)
class SettleRequest:
    """Settle a session: its charged time ended at ``end_ms`` (None: never charged).

    ``min_billed_s``: the least time billed once charging started.  A live call knows its end to the
    millisecond (0); a session reconciled after its node died was connected when charging started, so it
    owes at least its first second, which at 60/60 is the first minute (1).
    """

    session_id: str
    end_ms: int
    settled_ms: int
    reason: str
    min_billed_s: int = 0


@dataclass(frozen=True)
class Settlement:
    """A settled session: what the call cost and what went back to the balance."""

    session_id: str
    call_id: str
    profile: str
    number: str
    charge_cents: int
    refund_cents: int
    billed_s: int
    reason: str
    settled_ms: int
    balance_cents: int | None


@dataclass(frozen=True)
class Credits:
    """What the ledger credited to a session's account since the session opened, by cause.

    ``topped_up_cents``: top-ups, their bonuses, manual and API credits, positive corrections;
    ``refunded_cents``: the settlement refunds of the account's other call sessions.
    """

    topped_up_cents: int
    refunded_cents: int


class SessionStore(Protocol):
    """The store side of call sessions; every method returns a Deferred and runs in one transaction."""

    def open_session(self, request: OpenRequest) -> Deferred:  # -> Opened
        ...

    def debit_ahead(self, request: DebitAhead) -> Deferred:  # -> DebitOutcome
        ...

    def renew_leases(self, session_ids: tuple[str, ...], now_ms: int, lease_until_ms: int) -> Deferred:
        ...

    def settle(self, request: SettleRequest) -> Deferred:  # -> Settlement
        ...

    def credits_since_open(self, session_id: str) -> Deferred:  # -> Credits
        ...

    def on_balance_changed(self, callback: Callable[[str, str, int], None]) -> None:
        ...


# -- what the call controller hears -------------------------------------------


@dataclass(frozen=True)
class Warning_:
    """The credit ends in ``remaining_s`` seconds: play the warning to both sides."""

    session_id: str
    call_id: str
    at_ms: int
    end_ms: int
    remaining_s: int


@dataclass(frozen=True)
class Exhausted:
    """The credit is spent: say the last message and hang up both legs, then settle.

    ``free_minutes_over``: the call ran on a first-caller offer's free minutes and ends where they end
    (nothing paid for beyond them): the caller is told the free minutes are over and where to top up.
    """

    session_id: str
    call_id: str
    at_ms: int
    free_minutes_over: bool = False


@dataclass(frozen=True)
class CreditEnds:
    """The credit now ends at ``end_ms`` (charging started, or a change of the balance moved it)."""

    session_id: str
    call_id: str
    end_ms: int


@dataclass(frozen=True)
class TopUp:
    """``cents`` were topped up to the caller's account while the call runs (the ledger says so).

    ``minutes``: the whole minutes the credit lasts now, from ``at_ms`` (the end already moved).
    """

    session_id: str
    call_id: str
    at_ms: int
    cents: int
    minutes: int


@dataclass(frozen=True)
class Refund:
    """Another call of the caller settled and gave back ``cents``: more credit, but no top-up."""

    session_id: str
    call_id: str
    at_ms: int
    cents: int


class SessionObserver(Protocol):
    """What the call controller implements to hear from its session."""

    def session_warning(self, event: Warning_) -> None:
        ...

    def session_exhausted(self, event: Exhausted) -> None:
        ...

    def session_credit_ends(self, event: CreditEnds) -> None:
        ...

    def session_topped_up(self, event: TopUp) -> None:
        ...

    def session_refunded(self, event: Refund) -> None:
        ...


class NoObserver:
    """An observer that hears nothing: a settled session's (the controller is not kept alive by it), and
    the base of observers that act on some events only (batch jobs, tests)."""

    def session_warning(self, event: Warning_) -> None:
        pass

    def session_exhausted(self, event: Exhausted) -> None:
        pass

    def session_credit_ends(self, event: CreditEnds) -> None:
        pass

    def session_topped_up(self, event: TopUp) -> None:
        pass

    def session_refunded(self, event: Refund) -> None:
        pass


_NOBODY = NoObserver()


class Refused(Exception):
    """A session was not opened: no account, or the balance does not pay the first increment.

    (A caller who may still have a first-caller offer's free minutes is neither: see
    :func:`billing.db.sessions.open_thd`.)"""

    def __init__(self, reason: str, balance_cents: int, tariff: Tariff | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.balance_cents = balance_cents
        self.tariff = tariff


def charging_start_ms(mode: ChargingStart, *, answer_ms: int, announcement_end_ms: int | None = None) -> int:
    """When charging starts: after the announcement (its end), or at answer plus 0/10/20/30 s."""
    if mode is ChargingStart.AFTER_ANNOUNCEMENT:
        return answer_ms if announcement_end_ms is None else announcement_end_ms
    return answer_ms + mode.delay_after_answer_s * 1000


# -- the session state machine ------------------------------------------------


class State(enum.Enum):
    OPEN = "open"          # row written, charging not started (announcement, ringing the agent)
    CHARGING = "charging"  # debiting ahead, timers armed
    ENDED = "ended"        # credit exhausted; waiting for the controller to settle
    SETTLED = "settled"


class Event(enum.Enum):
    START = "start"
    EXHAUST = "exhaust"
    SETTLE = "settle"


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.OPEN, Event.START): State.CHARGING,
    (State.OPEN, Event.SETTLE): State.SETTLED,
    (State.CHARGING, Event.EXHAUST): State.ENDED,
    (State.CHARGING, Event.SETTLE): State.SETTLED,
    (State.ENDED, Event.SETTLE): State.SETTLED,
}


class SessionMisuse(Exception):
    """The caller of this API asked for something the session's state does not allow."""


def _ms(reactor: IReactorTime) -> int:
    return round(reactor.seconds() * 1000)


class CallSession:
    """One call's billing. Made by :meth:`CallBilling.open`; not constructed directly."""

    #: a held call keeps its session: slots, not a ~0.8 KB instance dict (bench/memory.py)
    __slots__ = ("_billing", "_reactor", "session_id", "call_id", "profile_name", "number", "tariff", "first_call",
                 "warn_before_s", "max_call_s", "state", "balance_cents", "minutes", "start_ms", "paid_s",
                 "debited_cents", "end_ms", "settlement", "_observer", "_seq", "_inflight", "_capped", "_probed_at",
                 "_retry", "_warned", "_end_due_ms", "_warn_due_ms", "_tick_due_ms", "_timer", "_timer_due_ms",
                 "_settle_waiters", "_settle_outcome",
                 "_credits_told")

    def __init__(self, billing: "CallBilling", opened: Opened, request: OpenRequest,
                 observer: SessionObserver) -> None:
        self._billing = billing
        self._reactor = billing.reactor
        self.session_id = opened.session_id
        self.call_id = request.call_id
        self.profile_name = request.profile.name
        self.number = request.number
        self.tariff = opened.tariff
        self.first_call = opened.first_call
        self.warn_before_s = request.profile.warn_before_s
        self.max_call_s = request.max_call_s
        self.state = State.OPEN
        self.balance_cents = opened.balance_cents
        #: what the announcement may promise
        self.minutes = minutes_callable(self.tariff, opened.balance_cents, max_s=self.max_call_s)
        self.start_ms: int | None = None
        self.paid_s = 0
        self.debited_cents = 0
        self.end_ms: int | None = None
        self.settlement: Settlement | None = None
        self._observer = observer
        self._seq = 0
        self._inflight: Deferred | None = None
        self._capped = False
        self._probed_at: int | None = None
        self._retry: DebitAhead | None = None
        self._warned = False
        #: when (clock ms) the credit ends, the warning is due and the next debit is due (None: not armed); the
        #: three share one reactor timer at the earliest (bench/memory.py: a DelayedCall with its bound
        #: methods is ~0.6 KB of a held call, and a charging call had three)
        self._end_due_ms: int | None = None
        self._warn_due_ms: int | None = None
        self._tick_due_ms: int | None = None
        self._timer: IDelayedCall | None = None
        self._timer_due_ms: int | None = None
        self._settle_waiters: list[Deferred] = []
        self._settle_outcome: tuple | None = None
        #: the ledger's credits since open that the controller has already been told of
        self._credits_told = Credits(0, 0)

    def _go(self, event: Event) -> None:
        nxt = TRANSITIONS.get((self.state, event))
        if nxt is None:
            raise SessionMisuse(f"session {self.session_id}: {event.value} in state {self.state.value}")
        self.state = nxt

    # -- the controller's API --------------------------------------------------

    def start_charging(self, at_ms: int | None = None) -> None:
        """Charging starts at ``at_ms`` (default: now); the first increment is debited at once.

        The store learns the start with that debit (:class:`DebitAhead` carries it), in one transaction.
        """
        self._go(Event.START)
        self.start_ms = _ms(self._reactor) if at_ms is None else at_ms
        self._debit()

    def settle(self, end_ms: int | None = None, reason: str = "hangup") -> Deferred:
        """Settle: charge the billed duration up to ``end_ms`` (default now), refund the rest.

        Idempotent: every call fires with the same :class:`Settlement`. A debit still in flight
        is waited for first, so that it is part of what is settled.
        """
        waiter: Deferred = Deferred()
        if self._settle_outcome is not None:
            self._fire(waiter)
            return waiter
        self._settle_waiters.append(waiter)
        if len(self._settle_waiters) > 1:
            return waiter
        self._go(Event.SETTLE)
        self._cancel_timers()
        now = _ms(self._reactor)
        request = SettleRequest(self.session_id, now if end_ms is None else end_ms, now, reason)
        pending = self._inflight if self._inflight is not None else succeed(None)
        pending.addBoth(lambda _: self._billing.store.settle(request))
        pending.addBoth(self._settled)
        return waiter

    def _settled(self, result) -> None:
        if isinstance(result, Settlement):
            self.settlement = result
        # a failure leaves the row open; its lease is no longer renewed, so the reconciler settles it
        self._billing._forget(self)
        self._observer = _NOBODY     # the controller and this session no longer hold each other
        self._settle_outcome = (result,)
        waiters, self._settle_waiters = self._settle_waiters, []
        for waiter in waiters:
            self._fire(waiter)

    def _fire(self, waiter: Deferred) -> None:
        assert self._settle_outcome is not None
        result = self._settle_outcome[0]
        if isinstance(result, Failure):
            waiter.errback(result)
        else:
            waiter.callback(result)

    # -- charging ----------------------------------------------------------------

    def _debit(self) -> None:
        self._tick_due_ms = None
        if self.state is not State.CHARGING or self._inflight is not None or self._capped:
            return
        request = self._retry
        self._retry = None
        if request is None:
            inc = self.tariff.increment
            want = reservation_target_s(inc, self.paid_s, self._billing.reserve_ahead_s)
            can = affordable_s(self.tariff, self.debited_cents + self.balance_cents, max_s=self.max_call_s)
            target = min(want, can)
            if target <= self.paid_s:
                # what we know of the balance does not pay another increment; but a top-up on another
                # node or by an operator's command is not announced here, so ask the store once per
                # boundary: the conditional debit of one increment answers with the balance as it is
                target = boundary_at_or_after(inc, self.paid_s + 1)
                if self._probed_at == self.paid_s or target > self.max_call_s:
                    self._rearm()
                    return
                self._probed_at = self.paid_s
            self._seq += 1
            amount = next_debit_cents(self.tariff, self.debited_cents, target)
            now = _ms(self._reactor)
            request = DebitAhead(self.session_id, self._seq, amount, target, self.debited_cents + amount,
                                 now, now + self._billing.lease_s * 1000, charging_started_ms=self.start_ms)
        inflight = self._inflight = Deferred()  # set before asking: the store may announce the new balance at once
        d = self._billing.store.debit_ahead(request)
        d.addCallbacks(self._debited, self._debit_failed, callbackArgs=(request,), errbackArgs=(request,))
        d.chainDeferred(inflight)

    def _debited(self, outcome: DebitOutcome, request: DebitAhead) -> None:
        self._inflight = None
        self._tick_due_ms = None
        self.balance_cents = outcome.balance_cents
        if outcome.applied:
            self.paid_s = request.paid_s
            self.debited_cents = request.debited_cents
            self._billing.debits += 1
        if self.state is not State.CHARGING:
            return
        # refused: the balance did not cover it (another call took it first); the credit ends at
        # the paid boundary until the balance changes again
        self._capped = not outcome.applied
        self._rearm()

    def _debit_failed(self, failure, request: DebitAhead) -> None:
        self._inflight = None
        self._tick_due_ms = None
        self._billing.log_failure(failure)
        if self.state is State.CHARGING:
            # the store did not answer: keep what is paid, and ask the same again in a second (the
            # same reference, so a debit that was written after all is not written twice)
            self._retry = request
            self._rearm(retry_s=1)

    def balance_changed(self, balance_cents: int) -> None:
        """The account's balance is now ``balance_cents``: move the end, the cut-off and the warning.

        A rise asks the ledger what was credited (:meth:`_ask_credits`): the controller hears a top-up
        only when one was booked, never because the balance rose.
        """
        rose = balance_cents > self.balance_cents
        self.balance_cents = balance_cents
        self._capped = False
        if self.state is State.CHARGING and self._inflight is None:
            self._rearm()           # (with a debit in flight, its answer re-arms)
        elif self.state is State.OPEN:
            self.minutes = minutes_callable(self.tariff, balance_cents, max_s=self.max_call_s)
        if rose and self.state in (State.OPEN, State.CHARGING):
            self._ask_credits()

    def _ask_credits(self) -> None:
        d = self._billing.store.credits_since_open(self.session_id)
        d.addCallbacks(self._credits_heard, self._billing.log_failure)

    def _credits_heard(self, credits: Credits) -> None:
        """Tell the controller of the credits it has not heard of yet (answers may come in any order)."""
        if self.state not in (State.OPEN, State.CHARGING):
            return
        told = self._credits_told
        topped_up = credits.topped_up_cents - told.topped_up_cents
        refunded = credits.refunded_cents - told.refunded_cents
        self._credits_told = Credits(max(told.topped_up_cents, credits.topped_up_cents),
                                     max(told.refunded_cents, credits.refunded_cents))
        now = _ms(self._reactor)
        if refunded > 0:
            self._observer.session_refunded(Refund(self.session_id, self.call_id, now, refunded))
        if topped_up > 0:
            minutes = self.minutes if self.end_ms is None else max(0, (self.end_ms - now) // 60_000)
            self._observer.session_topped_up(TopUp(self.session_id, self.call_id, now, topped_up, minutes))

    # -- timers --------------------------------------------------------------------

    def _rearm(self, retry_s: int | None = None) -> None:
        assert self.start_ms is not None
        now = _ms(self._reactor)
        end_s = self._end_s()
        end_ms = self.start_ms + end_s * 1000
        old_end = self.end_ms
        self.end_ms = end_ms
        if old_end != end_ms or self._end_due_ms is None:
            self._end_due_ms = end_ms
        if old_end != end_ms:
            self._observer.session_credit_ends(CreditEnds(self.session_id, self.call_id, end_ms))
        warn_ms = end_ms - self.warn_before_s * 1000
        if self._warned and old_end is not None and end_ms > old_end and warn_ms > now:
            self._warned = False  # a top-up moved the end beyond the warning window: warn again later
        if not self._warned and (old_end != end_ms or self._warn_due_ms is None):
            self._warn_due_ms = warn_ms
        if self._tick_due_ms is None and self._inflight is None:
            if retry_s is not None:
                self._tick_due_ms = now + retry_s * 1000
            elif self.paid_s < end_s or (self._probed_at != self.paid_s and not self._capped):
                self._tick_due_ms = self.start_ms + self.paid_s * 1000 - self._billing.debit_lead_s * 1000
        self._schedule()

    def _schedule(self) -> None:
        """The one reactor timer at the earliest deadline, none when none is armed.  One already armed no later
        is kept: it fires, finds nothing due, and moves on (a cancelled DelayedCall stays in the reactor's heap
        until it compacts it, and each debit moves the earliest deadline)."""
        dues = [due for due in (self._end_due_ms, self._warn_due_ms, self._tick_due_ms) if due is not None]
        if not dues:
            self._cancel(self._timer)
            self._timer = self._timer_due_ms = None
            return
        due_ms = min(dues)
        if self._timer is not None and self._timer_due_ms is not None and self._timer_due_ms <= due_ms:
            return
        self._cancel(self._timer)
        self._timer_due_ms = due_ms
        self._timer = self._reactor.callLater(max(0, due_ms - _ms(self._reactor)) / 1000, self._deadline)

    def _deadline(self) -> None:
        """The timer fired: each deadline due by then runs once, earliest first (ties: end, warning, debit, the
        order they are armed in), as their own timers would have; then the timer moves to the next."""
        at_ms = max(_ms(self._reactor), self._timer_due_ms or 0)
        self._timer = self._timer_due_ms = None     # a deadline armed by what runs now arms the timer afresh
        due = sorted((due_ms, rank) for rank, due_ms in enumerate((self._end_due_ms, self._warn_due_ms,
                                                                   self._tick_due_ms))
                     if due_ms is not None and due_ms <= at_ms)
        for due_ms, rank in due:
            if rank == 0 and self._end_due_ms == due_ms:
                self._end_due_ms = None
                self._exhaust()
            elif rank == 1 and self._warn_due_ms == due_ms:
                self._warn_due_ms = None
                self._warn()
            elif rank == 2 and self._tick_due_ms == due_ms:
                self._debit()
        self._schedule()

    def _end_s(self) -> int:
        """Where the credit ends, in seconds of charged time: what is paid, plus what the balance buys."""
        if self._capped:
            return self.paid_s
        end_s = affordable_s(self.tariff, self.debited_cents + self.balance_cents, max_s=self.max_call_s)
        return max(end_s, self.paid_s)

    def _warn(self) -> None:
        if self.state is not State.CHARGING or self._warned or self.end_ms is None:
            return
        self._warned = True
        now = _ms(self._reactor)
        self._observer.session_warning(Warning_(self.session_id, self.call_id, now, self.end_ms,
                                                max(0, (self.end_ms - now + 999) // 1000)))

    def _exhaust(self) -> None:
        if self.state is not State.CHARGING:
            return
        now = _ms(self._reactor)
        if self.end_ms is not None and now < self.end_ms:
            self._end_due_ms = self.end_ms      # fired early (ms rounding): again at the end
            return
        self._go(Event.EXHAUST)
        self._cancel_timers()
        self._observer.session_exhausted(Exhausted(self.session_id, self.call_id, now, self._free_minutes_over()))

    def _free_minutes_over(self) -> bool:
        """Whether the credit ends where a free first-caller offer ends: nothing was paid beyond it."""
        offer = self.tariff.first_caller
        return offer is not None and offer.free and self.debited_cents == 0 and self.paid_s <= offer.period_s

    @staticmethod
    def _cancel(call: IDelayedCall | None) -> None:
        if call is not None and call.active():
            call.cancel()

    def _cancel_timers(self) -> None:
        self._cancel(self._timer)
        self._timer = self._end_due_ms = self._warn_due_ms = self._tick_due_ms = self._timer_due_ms = None


class CallBilling:
    """The node's call sessions: opens them, feeds them balance changes, keeps their leases."""

    def __init__(self, store: SessionStore, reactor: IReactorTime, *, node_id: str, lease_s: int = 60,
                 renew_interval_s: int | None = None, reserve_ahead_s: int = 60, debit_lead_s: int = 5, max_call_s: int = MAX_CALL_S,
                 log_failure: Callable | None = None) -> None:
        self.store = store
        self.reactor = reactor
        self.node_id = node_id
        self.lease_s = lease_s
        #: how often the open sessions' leases are renewed (default a third of the lease): a node that dies
        #: mid-call has its calls billed up to the last renewal, so this bounds the talk that goes unbilled
        self.renew_interval_s = renew_interval_s if renew_interval_s is not None else max(1, lease_s // 3)
        self.reserve_ahead_s = reserve_ahead_s
        self.debit_lead_s = debit_lead_s
        self.max_call_s = max_call_s
        self.log_failure = log_failure or (lambda failure: _log.failure("call billing: store failed", failure))
        self.debits = 0
        self._sessions: dict[str, CallSession] = {}
        #: each caller's open sessions, in the order they opened: a tuple (one session, mostly), not a set
        #: (~170 B more per held call, bench/memory.py --by-site: billing/session.py)
        self._by_account: dict[tuple[str, str], tuple[CallSession, ...]] = {}
        self._renew_call: IDelayedCall | None = None
        store.on_balance_changed(self._balance_changed)

    @property
    def sessions(self) -> tuple[CallSession, ...]:
        return tuple(self._sessions.values())

    def open(self, profile: BillingProfile, number: str, caller_class: CallerClass, call_id: str,
             observer: SessionObserver) -> Deferred:
        """Open a session; fires with a :class:`CallSession`, or fails with :class:`Refused`."""
        now = _ms(self.reactor)
        request = OpenRequest(str(uuid.uuid4()), profile, number, caller_class, call_id, self.node_id,
                              now, now + self.lease_s * 1000, self.max_call_s)

        def opened(answer: Opened) -> CallSession:
            if answer.refused is not None:
                raise Refused(answer.refused, answer.balance_cents, answer.tariff)
            session = CallSession(self, answer, request, observer)
            self._sessions[session.session_id] = session
            key = (profile.name, number)
            self._by_account[key] = self._by_account.get(key, ()) + (session,)
            self._schedule_renewal()
            return session

        return self.store.open_session(request).addCallback(opened)

    def _forget(self, session: CallSession) -> None:
        self._sessions.pop(session.session_id, None)
        key = (session.profile_name, session.number)
        peers = self._by_account.get(key)
        if peers is not None and session in peers:
            rest = tuple(peer for peer in peers if peer is not session)
            if rest:
                self._by_account[key] = rest
            else:
                del self._by_account[key]

    def _balance_changed(self, profile_name: str, number: str, balance_cents: int) -> None:
        for session in self._by_account.get((profile_name, number), ()):
            session.balance_changed(balance_cents)

    # -- leases --------------------------------------------------------------------

    def _schedule_renewal(self) -> None:
        if self._renew_call is None or not self._renew_call.active():
            self._renew_call = self.reactor.callLater(self.renew_interval_s, self._renew)

    def _renew(self) -> None:
        self._renew_call = None
        ids = tuple(sid for sid, s in self._sessions.items() if s.state is not State.SETTLED)
        if not ids:
            return
        now = _ms(self.reactor)
        self.store.renew_leases(ids, now, now + self.lease_s * 1000).addErrback(self.log_failure)
        self._schedule_renewal()

    def stop(self) -> None:
        """Stop renewing leases (the sessions stay open in the store until settled or reconciled)."""
        if self._renew_call is not None and self._renew_call.active():
            self._renew_call.cancel()
        self._renew_call = None
