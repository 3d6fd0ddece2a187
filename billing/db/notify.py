"""Hearing balance changes from other nodes at once: PostgreSQL LISTEN on the channel that
migration 0004's trigger notifies (``prepaid_balance_<schema>``).

One thread holds one connection that only listens; each notification is
handed to ``deliver(profile, number, balance_cents, updated_ms)`` on the
reactor thread (``reactor.callFromThread``). A lost connection is opened
again after ``retry_s``; :meth:`PgBalanceListener.stop` ends the thread within
``poll_s``. Nothing here is needed for correctness: the polling
:class:`billing.events.BalanceWatcher` finds every change anyway, only later.
"""

from __future__ import annotations

import json
import threading
from typing import Callable

from sqlalchemy.engine import make_url
from twisted.logger import Logger

CHANNEL_PREFIX = "prepaid_balance_"


def libpq_url(url: str) -> str:
    """The SQLAlchemy ``postgresql+psycopg://`` URL as a libpq URI (query options kept)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgBalanceListener:
    """A thread that LISTENs for balance notifications and delivers them on the reactor thread."""

    log = Logger()

    def __init__(self, url: str, reactor, deliver: Callable[[str, str, int, int], None], *,
                 poll_s: float = 0.5, retry_s: float = 2.0) -> None:
        self.conninfo = libpq_url(url)
        self.reactor = reactor
        self.deliver = deliver
        self.poll_s = poll_s
        self.retry_s = retry_s
        #: set once the first LISTEN is in place (tests wait on it)
        self.ready = threading.Event()
        self.delivered = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "PgBalanceListener":
        """Start the listening thread."""
        self._thread = threading.Thread(target=self._run, name="prepaid-pg-listen", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; returns once the thread has ended (within about ``poll_s``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_s * 4 + 1)
            self._thread = None

    def _run(self) -> None:
        import psycopg
        from psycopg import sql
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    schema = conn.execute("SELECT current_schema()").fetchone()[0]
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL_PREFIX + schema)))
                    self.ready.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self.poll_s):
                            self._hand_over(note.payload)
            except Exception as exc:  # a lost connection: try again, unless stopping
                if not self._stop.is_set():
                    self.log.warn("balance LISTEN connection lost ({error}); again in {retry_s} s",
                                  error=exc, retry_s=self.retry_s)
                    self._stop.wait(self.retry_s)

    def _hand_over(self, payload: str) -> None:
        try:
            data = json.loads(payload)
            args = (str(data["profile"]), str(data["number"]), int(data["balance_cents"]), int(data["updated_ms"]))
        except (ValueError, KeyError, TypeError):
            self.log.warn("balance notification not understood: {payload!r}", payload=payload)
            return
        self.reactor.callFromThread(self.deliver, *args)
        self.delivered += 1  # after the hand-over: a reader that sees the count finds the call queued
