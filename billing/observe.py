"""What the store lets others watch without importing them: how long its jobs take, and the top-ups it credits.

    store.on_job(lambda job: ...)          # a JobTiming after each job of the pool
    store.on_topup(lambda topup: ...)      # a Topup after each top-up credited (not a repeat)

The node turns these into metrics (store latency and errors, top-ups by method); billing itself
imports nothing of who listens. A listener that raises is logged, and the others still hear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from .db.rows import StoreError

log = Logger()

T = TypeVar("T")


@dataclass(frozen=True)
class JobTiming:
    """One store job: ``mode`` "now" (asked to start at once) or "soon" (waits up to the pool's ``soon_s`` to
    share a commit); ``seconds`` from the ask to the answer on the reactor thread; ``error`` the class name
    of the failure when it failed other than by a refusal (:class:`StoreError`: no account, a number taken),
    else None."""

    mode: str
    seconds: float
    error: str | None = None


@dataclass(frozen=True)
class Topup:
    """A top-up credited: ``method`` is the ledger source (paypal, klarna, paysafecard, manual, api...),
    ``amount_cents`` what was paid or booked, without the bonus."""

    profile: str
    method: str
    amount_cents: int
    bonus_cents: int = 0


class Listeners(Generic[T]):
    """Callbacks told of each ``T``; one that raises is logged with its traceback and counted
    (:attr:`failures`), and the others still hear the news."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., None]] = []
        #: exceptions out of a callback (a bug of the listener; logged where caught)
        self.failures = 0

    def __bool__(self) -> bool:
        return bool(self._callbacks)

    def listen(self, callback: Callable[..., None]) -> Callable[[], None]:
        """Add ``callback``; returns a function that removes it."""
        self._callbacks.append(callback)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)
        return remove

    def tell(self, *news) -> None:
        """Call each callback with ``news`` (one ``T``, or the several values a subclass documents)."""
        for callback in tuple(self._callbacks):
            try:
                callback(*news)
            except Exception:
                self.failures += 1
                log.failure("store listener {callback!r} failed", callback=callback)


class JobTimer:
    """Times the pool's jobs on ``seconds()`` (the reactor's clock) for its listeners."""

    def __init__(self, seconds: Callable[[], float]) -> None:
        self.seconds = seconds
        self.listeners: Listeners[JobTiming] = Listeners()

    def track(self, d: Deferred, mode: str) -> Deferred:
        """``d``, told to the listeners when it fires (nothing added when nobody listens)."""
        if not self.listeners:
            return d
        start = self.seconds()

        def done(result):
            error = None
            if isinstance(result, Failure) and not result.check(StoreError):
                error = result.type.__name__
            self.listeners.tell(JobTiming(mode, max(0.0, self.seconds() - start), error))
            return result
        return d.addBoth(done)
