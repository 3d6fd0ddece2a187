"""Settling the calls of a node that died: sessions whose lease ran out.

Every open session holds a lease that its node renews (with each debit, and for
all its sessions every ``renew_interval_s``). When a node crashes, its leases run
out; any node (or ``prepaid reconcile``) then settles those sessions as if the
call had ended at the last renewal: the billed time up to then (capped at what
was paid ahead, and at least the first second once charging started, so that a
node dying before its first renewal gives no free call: at 60/60 the first
minute is owed) is charged, the rest of what was debited goes back to the
balance as a ``call_refund``. Settling is the same conditional transaction a live
session uses, so a session settled twice, or by two reconcilers at once, is
settled once: nothing is lost and nothing is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from .session import Settlement, SettleRequest

_log = Logger(namespace="billing.reconcile")

#: the end reason written on a session settled here
LEASE_EXPIRED = "lease expired"


@dataclass(frozen=True)
class ExpiredSession:
    """An open session whose lease ran out, and the time of its last renewal."""

    session_id: str
    node_id: str
    last_renewal_ms: int


class ReconcileStore(Protocol):
    def expired_sessions(self, now_ms: int, limit: int) -> Deferred:  # -> list[ExpiredSession]
        ...

    def settle(self, request: SettleRequest) -> Deferred:  # -> Settlement
        ...


@inlineCallbacks
def reconcile_once(store: ReconcileStore, now_ms: int, *, batch: int = 200):
    """Settle every session whose lease ran out before ``now_ms``; fires with their settlements."""
    done: list[Settlement] = []
    seen: set[str] = set()
    while True:
        expired = yield store.expired_sessions(now_ms, batch)
        fresh = [e for e in expired if e.session_id not in seen]
        if not fresh:
            return done
        for e in fresh:
            seen.add(e.session_id)
            settlement = yield store.settle(SettleRequest(e.session_id, e.last_renewal_ms, now_ms, LEASE_EXPIRED,
                                                          min_billed_s=1))
            done.append(settlement)


class Reconciler:
    """Runs :func:`reconcile_once` every ``interval_s`` on the reactor, one run at a time.

    ``store`` is a :class:`ReconcileStore`, or the node's :class:`billing.store.Store` (then wrapped in
    :class:`billing.db.sessions.SqlSessionStore`; ``lease_s`` only matters for rows written before
    migration 0002, which lack the time of their last renewal).
    """

    def __init__(self, store, reactor: IReactorTime, interval_s: int, *, lease_s: int = 60,
                 on_settled: Callable[[Settlement], None] = lambda s: None,
                 log_failure: Callable | None = None) -> None:
        if not hasattr(store, "expired_sessions"):
            from .db.sessions import SqlSessionStore  # here: billing.db.sessions imports this module
            store = SqlSessionStore(store, lease_s=lease_s, actor=f"reconcile:{store.node_id}")
        self.store = store
        self.reactor = reactor
        self.interval_s = interval_s
        self.on_settled = on_settled
        self.log_failure = log_failure or (lambda failure: _log.failure("reconcile run failed", failure))
        self.settled = 0
        self._call: IDelayedCall | None = None
        self._running: Deferred | None = None
        self._stopped = True

    def start(self) -> None:
        """Run now, then every ``interval_s``."""
        self._stopped = False
        self._run()

    def stop(self) -> Deferred | None:
        """Stop; returns the run in progress (if any) so that shutdown can wait for it."""
        self._stopped = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        return self._running

    def run_once(self) -> Deferred:
        now_ms = round(self.reactor.seconds() * 1000)
        return reconcile_once(self.store, now_ms).addCallback(self._report)

    def _report(self, settlements: list[Settlement]) -> list[Settlement]:
        for s in settlements:
            self.settled += 1
            _log.info("reconciled call session {session_id} (call {call_id}, {profile} {number}): {billed_s} s "
                      "billed, {charge_cents} cents charged, {refund_cents} refunded",
                      session_id=s.session_id, call_id=s.call_id, profile=s.profile, number=s.number,
                      billed_s=s.billed_s, charge_cents=s.charge_cents, refund_cents=s.refund_cents)
            self.on_settled(s)
        return settlements

    def _run(self) -> None:
        self._call = None
        if self._stopped or self._running is not None:
            return
        self._running = self.run_once()
        self._running.addErrback(self.log_failure).addBoth(self._ran)

    def _ran(self, _) -> None:
        self._running = None
        if not self._stopped:
            self._call = self.reactor.callLater(self.interval_s, self._run)
