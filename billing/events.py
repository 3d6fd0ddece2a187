"""Balance-change news on this node: who wants to hear that an account's balance changed.

The store announces every committed change of a balance (credit, debit,
reversal, a settled call...) as ``(profile, number, balance_cents)``; call
sessions listen, to move their end of credit at once. News from other nodes
sharing the store come in through :class:`BalanceWatcher` (polling, and on
PostgreSQL LISTEN/NOTIFY) to :meth:`BalanceEvents.announce` as well, so
listeners need not care where a change came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from twisted.logger import Logger

from .observe import Listeners

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

BalanceListener = Callable[[str, str, int], None]


class BalanceEvents(Listeners):
    """The listeners of balance changes, each called as ``callback(profile, number, balance_cents)``;
    one that raises is logged and counted, and the others still hear the news."""

    def announce(self, profile: str, number: str, balance_cents: int) -> None:
        """Tell every listener that the balance of (profile, number) is now ``balance_cents``."""
        self.tell(profile, number, balance_cents)


class BalanceWatcher:
    """Hears of balance changes made elsewhere (other nodes, operator commands) by asking the store.

    Every ``interval_s`` it fetches the accounts changed since its last look
    (less ``margin_ms``, for clocks that differ between nodes and for
    transactions that commit late) and announces those whose balance it has
    not yet heard. Changes announced on this node are heard too, so they are
    not announced twice. ``fetch(since_ms)`` fires with
    ``[(profile, number, balance_cents, updated_ms), ...]``; ``reactor``
    gives time and ``callLater``. On PostgreSQL, ``billing/db/notify.py``
    pushes notifications into :meth:`offer` at once; polling stays as the net
    under it.
    """

    log = Logger()

    def __init__(self, events: BalanceEvents, fetch: Callable[[int], "Deferred"], reactor, *,
                 interval_s: float = 2.0, margin_ms: int = 5000) -> None:
        self.events = events
        self.fetch = fetch
        self.reactor = reactor
        self.interval_s = interval_s
        self.margin_ms = margin_ms
        self._known: dict[tuple[str, str], tuple[int, int]] = {}
        self._since_ms = 0
        self._call = None
        self._busy = False
        self._remove = events.listen(self._heard)
        self._also_stop: list[Callable[[], None]] = []
        #: the push source feeding :meth:`offer`, if any (PostgreSQL LISTEN)
        self.listener = None

    def _now_ms(self) -> int:
        return int(round(self.reactor.seconds() * 1000))

    def _heard(self, profile: str, number: str, balance_cents: int) -> None:
        self._known[(profile, number)] = (balance_cents, self._now_ms())

    def offer(self, profile: str, number: str, balance_cents: int, updated_ms: int) -> None:
        """A balance as the store (or a notification) has it: announced unless this node heard it already."""
        known = self._known.get((profile, number))
        if known is not None and (updated_ms < known[1] or balance_cents == known[0]):
            return
        self.events.announce(profile, number, balance_cents)  # _heard records it

    def also_stop(self, stop: Callable[[], None]) -> None:
        """Call ``stop`` when the watcher stops (a push source such as a LISTEN thread)."""
        self._also_stop.append(stop)

    def start(self) -> "BalanceWatcher":
        """Start looking every ``interval_s`` (the first look after one interval)."""
        self._since_ms = self._now_ms()
        self._call = self.reactor.callLater(self.interval_s, self.poll)
        return self

    def stop(self) -> None:
        """Stop looking and stop listening."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._remove()
        for stop in self._also_stop:
            stop()
        self._also_stop.clear()

    def poll(self):
        """Look once now (and re-arm); fires when the look is done."""
        from twisted.internet.defer import succeed
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = self.reactor.callLater(self.interval_s, self.poll)
        if self._busy:
            return succeed(None)
        self._busy = True
        asked_ms = self._now_ms()
        d = self.fetch(self._since_ms - self.margin_ms)

        def got(rows) -> None:
            for row in rows:
                self.offer(*row)
            self._since_ms = asked_ms
            floor = asked_ms - 4 * self.margin_ms
            for key in [k for k, (_, at) in self._known.items() if at < floor]:
                del self._known[key]

        def done(result):
            self._busy = False
            return result
        d.addCallback(got)
        d.addErrback(lambda f: self.log.failure("balance watcher: the store did not answer", f))
        return d.addBoth(done)
