"""The one Twisted driver of call control: each input runs to its end, then the endpoint is flushed once.

Call control has four kinds of input: an endpoint event (routed by
:class:`~b2bua.calls.CallManager` to the leg that owns it), a timer (a call's
ring, charge, limit and PIN timers, a leg's session, PRACK and modify timers),
a billing or store callback (a session opened, a PIN looked up), and media news
(an announcement said, dead media, a key pressed).  :meth:`CallDriver.run`
carries one input: the handler, then every call event the legs emitted meanwhile
(:meth:`CallDriver.emit` queues them, so that a leg never re-enters the call in
the middle of an action), then one ``flush`` of the endpoint — as aioquic's
protocol adapter transmits once per datagram.  No part of call control flushes
by hand.

An exception out of a handler is a fault of ours (:class:`~b2bua.faults.CallFaults`):
raised again in tests, logged once with the call id and counted in the node,
and the other calls go on.

Each call (and its legs) sees the driver through :class:`CallInputs`, which is
also the call's clock: ``seconds()`` is the reactor's and ``callLater`` arms a
timer whose firing is one input of that call.  A call's timers share one reactor
timer at the earliest of them (:class:`CallTimer`): a held call keeps its limit
and both legs' session timers, and a reactor DelayedCall with its bound methods
is ~0.6 KB of a held call's memory (``bench/memory.py``).  Timers due by the
time it fires run earliest first (ties in the order they were armed), each one
input.

Pinned by ``tests/b2bua/test_calldriver.py``.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Union

from twisted.internet.error import AlreadyCalled, AlreadyCancelled
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from .faults import CallFaults


def _nothing() -> None:
    pass


#: the call an input belongs to, for a fault's log line: its id, or a function of the input's arguments that
#: finds it (worked out only when there is a fault to log)
CallId = Union[str, Callable[..., str]]


class CallDriver:
    """Runs call control's inputs one at a time and flushes the endpoint once after each."""

    def __init__(self, reactor: IReactorTime, flush: Callable[[], None] = _nothing,
                 faults: CallFaults | None = None) -> None:
        self.reactor = reactor
        #: the reactor's clock, bound once: every call's inputs share it (each reading of ``reactor.seconds``
        #: makes a bound method, 64 B of each held call)
        self.seconds: Callable[[], float] = reactor.seconds
        self._flush = flush
        self.faults = faults if faults is not None else CallFaults()
        #: call events emitted during the running input, for their handlers: (handler, event, call id)
        self._queue: deque[tuple[Callable[[Any], None], Any, str]] = deque()
        self._running = False

    def run(self, call_id: CallId, handler: Callable[..., Any], *args: Any) -> None:
        """One input: ``handler(*args)``, the call events it caused, then one flush.

        Inside a running input (a Deferred that had fired already, billing telling another call of the
        caller) it is part of that input: the handler runs at once, its fault is its own call's, and the
        outer input flushes."""
        if self._running:
            self._guarded(call_id, handler, args)
            return
        self._running = True
        try:
            self._guarded(call_id, handler, args)
            while self._queue:
                on_event, event, event_call_id = self._queue.popleft()
                self._guarded(event_call_id, on_event, (event,))
        finally:
            self._running = False
            self._queue.clear()      # only left over when a strict fault was raised
        self._flush()

    def emit(self, call_id: str, on_event: Callable[[Any], None], event: Any) -> None:
        """Hand ``event`` to ``on_event`` once the running input's handler is done (at once when none runs)."""
        if self._running:
            self._queue.append((on_event, event, call_id))
        else:
            self.run(call_id, on_event, event)

    def _guarded(self, call_id: CallId, handler: Callable[..., Any], args: tuple) -> None:
        try:
            handler(*args)
        except Exception:
            what = f"{handler.__name__}({type(args[0]).__name__})" if args else handler.__name__
            self.faults.error(call_id if isinstance(call_id, str) else call_id(*args), f"{what} failed")

    def inputs(self, call_id: str) -> "CallInputs":
        """What one call and its legs see of the driver (their clock, their timers, their sink)."""
        return CallInputs(self, call_id)


class CallInputs:
    """One call's view of the driver: its clock, its timers and Deferred callbacks as inputs, its sink."""

    __slots__ = ("driver", "call_id", "_reactor", "seconds", "_timers", "_wake", "_wake_s")

    def __init__(self, driver: CallDriver, call_id: str) -> None:
        self.driver = driver
        self.call_id = call_id
        self._reactor = driver.reactor
        #: the reactor's clock itself (no frame of ours between: the call and its legs read it often)
        self.seconds: Callable[[], float] = driver.seconds
        #: the call's pending timers, and the one reactor timer at the earliest of them (when it is due, s)
        self._timers: list[CallTimer] = []
        self._wake: IDelayedCall | None = None
        self._wake_s = 0.0

    def callLater(self, delay_s: float, handler: Callable[..., Any], *args: Any) -> IDelayedCall:  # noqa: N802
        """A timer whose firing is one input of this call (IReactorTime's name, so legs take either)."""
        timer = CallTimer(self, self.seconds() + delay_s, handler, args)
        self._timers.append(timer)
        if self._wake is None or timer.at_s < self._wake_s:
            self._rearm()
        return timer

    def _rearm(self) -> None:
        """The reactor timer at the earliest pending timer, none when none is pending.  One already armed no
        later is kept: it fires, finds nothing due, and moves on (a cancelled DelayedCall stays in the reactor's
        heap until it compacts it, and the ring or PIN timer of each call is cancelled)."""
        timers = self._timers = [timer for timer in self._timers if timer.owner is not None]
        if not timers:
            self._cancel_wake()
            return
        earliest_s = min(timer.at_s for timer in timers)
        if self._wake is not None:
            if self._wake_s <= earliest_s:
                return
            self._wake.cancel()
        self._wake_s = earliest_s
        self._wake = self._reactor.callLater(max(0.0, earliest_s - self.seconds()), self._due)

    def _cancel_wake(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None

    def _due(self) -> None:
        self._wake = None
        now_s = max(self._wake_s, self.seconds())
        try:
            for timer in sorted((timer for timer in self._timers if timer.at_s <= now_s), key=_at_s):
                if timer.owner is not None:         # not cancelled by a timer before it
                    handler, args = timer.handler, timer.args
                    timer.owner, timer.handler, timer.args = None, _nothing, ()    # no cycle through the call
                    self.driver.run(self.call_id, handler, *args)
        finally:
            self._rearm()

    def _cancelled(self, timer: "CallTimer") -> None:
        self._timers.remove(timer)
        if not self._timers:
            self._cancel_wake()

    def input(self, handler: Callable[..., Any]) -> Callable[..., None]:
        """``handler`` as a Deferred callback (or a media callback) whose call is one input of this call."""
        def one_input(*args: Any) -> None:
            self.driver.run(self.call_id, handler, *args)
        return one_input

    def emit(self, on_event: Callable[[Any], None], event: Any) -> None:
        self.driver.emit(self.call_id, on_event, event)


class CallTimer:
    """One timer of a call (what call control uses of IDelayedCall: ``active``, ``cancel``, ``getTime``)."""

    __slots__ = ("owner", "at_s", "handler", "args", "cancelled")

    def __init__(self, owner: CallInputs, at_s: float, handler: Callable[..., Any], args: tuple) -> None:
        #: the call's inputs while the timer is pending; None once it fired or was cancelled
        self.owner: CallInputs | None = owner
        self.at_s = at_s
        self.handler = handler
        self.args = args
        self.cancelled = False

    def getTime(self) -> float:  # noqa: N802
        return self.at_s

    def active(self) -> bool:
        return self.owner is not None

    def cancel(self) -> None:
        owner = self.owner
        if owner is None:
            raise AlreadyCancelled() if self.cancelled else AlreadyCalled()
        self.owner, self.handler, self.args = None, _nothing, ()     # no cycle through the call
        self.cancelled = True
        owner._cancelled(self)


def _at_s(timer: CallTimer) -> float:
    return timer.at_s
