"""Running the store's SQL off the reactor thread (Buildbot ``db/pool.py`` style).

:meth:`DBPool.do` runs ``fn(engine)`` on a Twisted thread pool with
``deferToThreadPool`` and fires the Deferred on the reactor thread; the thread
pool stops when the reactor shuts down or :meth:`close` is called. Without a
reactor (``inline=True``: operator commands, unit tests on ``task.Clock``)
``fn`` runs at once in the caller's thread and the Deferred has already fired:
the same functions, the same SQL, only the thread differs.
"""

from __future__ import annotations

from typing import Any, Callable

import sqlalchemy as sa
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool


class DBPool:
    """A thread pool bound to one engine."""

    def __init__(self, engine: sa.Engine, reactor=None, *, threads: int = 5, inline: bool = False) -> None:
        self.engine = engine
        self.reactor = reactor
        self.inline = inline or reactor is None
        self._pool: ThreadPool | None = None
        self._shutdown_trigger = None
        self._closed = False
        if not self.inline:
            self._pool = ThreadPool(minthreads=1, maxthreads=threads, name="prepaid-db")
            self._pool.start()
            if hasattr(reactor, "addSystemEventTrigger"):
                self._shutdown_trigger = reactor.addSystemEventTrigger("during", "shutdown", self._stop_pool)

    def do(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """Run ``fn(engine, *args, **kwargs)``; a Deferred firing with its result (or failure)."""
        if self._pool is None:
            if self._closed:
                return fail(RuntimeError("the store is closed"))
            try:
                return succeed(fn(self.engine, *args, **kwargs))
            except Exception:
                return fail(Failure())
        return deferToThreadPool(self.reactor, self._pool, fn, self.engine, *args, **kwargs)

    def transaction(self, thd: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """Run ``thd(conn, *args, **kwargs)`` inside one transaction (committed when it returns)."""
        return self.do(_in_transaction, thd, *args, **kwargs)

    def _stop_pool(self) -> None:
        if self._pool is not None:
            self._pool.stop()
            self._pool = None

    def close(self) -> None:
        """Stop the threads (waiting for running work) and close the engine's connections."""
        if self._shutdown_trigger is not None:
            try:
                self.reactor.removeSystemEventTrigger(self._shutdown_trigger)
            except (ValueError, KeyError):
                pass
            self._shutdown_trigger = None
        self._closed = True
        self._stop_pool()
        self.engine.dispose()


def _in_transaction(engine: sa.Engine, thd: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with engine.begin() as conn:
        return thd(conn, *args, **kwargs)
