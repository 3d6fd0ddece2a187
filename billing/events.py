"""Balance-change news on this node: who wants to hear that an account's balance changed.

The store announces every committed change of a balance (credit, debit,
reversal, a settled call...) as ``(profile, number, balance_cents)``; call
sessions listen, to move their end of credit at once. News from other nodes
sharing PostgreSQL (LISTEN/NOTIFY or polling) will come in through
:meth:`BalanceEvents.announce` as well, so listeners need not care where a
change came from.
"""

from __future__ import annotations

from typing import Callable

from twisted.logger import Logger

BalanceListener = Callable[[str, str, int], None]


class BalanceEvents:
    """A list of listeners; a listener that raises is logged and the others still hear the news."""

    log = Logger()

    def __init__(self) -> None:
        self._listeners: list[BalanceListener] = []

    def listen(self, callback: BalanceListener) -> Callable[[], None]:
        """Add ``callback(profile, number, balance_cents)``; returns a function that removes it."""
        self._listeners.append(callback)

        def remove() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)
        return remove

    def announce(self, profile: str, number: str, balance_cents: int) -> None:
        """Tell every listener that the balance of (profile, number) is now ``balance_cents``."""
        for callback in tuple(self._listeners):
            try:
                callback(profile, number, balance_cents)
            except Exception:
                self.log.failure("balance listener {callback!r} failed", callback=callback)
