"""Running the store's SQL off the reactor thread (Buildbot ``db/pool.py`` style, leaner).

:meth:`DBPool.transaction` runs ``thd(conn)`` inside one transaction on one of
the pool's worker threads and fires its Deferred on the reactor thread;
:meth:`DBPool.do` runs ``fn(engine)`` the same way, for functions that manage
their own transactions. Without a reactor (``inline=True``: operator commands,
unit tests on ``task.Clock``) the function runs at once in the caller's thread
and the Deferred has already fired: the same functions, the same SQL, only the
thread differs.

What a call's store work costs here is measured by ``bench/store_calls.py``;
two things keep the handoff cheap:

* Each worker thread keeps one connection for its transactions, so a
  transaction is ``BEGIN ... COMMIT`` on a connection at hand, not a checkout
  from the engine's pool with its ping and its reset (~50 us of CPU on SQLite,
  ~150 us on PostgreSQL). A connection found dead inside a transaction (a
  restarted server; what the engine's ``pool_pre_ping`` did at checkout) is
  replaced and the transaction run once more: it committed nothing. A failure
  at COMMIT is not retried (whether it committed is unknown).
* The transaction is begun and ended on the driver's connection
  (:func:`billing.db.engine.begin`, then its ``commit``/``rollback``), not by
  SQLAlchemy's ``Connection.begin()``, whose machinery costs more than the
  statements of a debit (they run on the driver's cursor,
  :mod:`billing.db.prepared`). A ``thd`` may still use SQLAlchemy's own
  ``execute`` and ``begin_nested``: SQLAlchemy then begins its transaction on
  the one already open (the engine's begin hook sees it and sends nothing),
  and the end goes through SQLAlchemy.
* Work is handed over on a plain queue, and results come back in batches: a
  worker asks the reactor once (``callFromThread``) to fire every Deferred
  whose result is ready by then, instead of once per result (Twisted's
  ``ThreadPool`` with ``deferToThreadPool`` costs ~30-85 us per job).
* Work that can wait (call records) rides with the next job: a *rider*
  (:meth:`DBPool.add_rider`) is asked before each job is queued and may queue
  its own first, so a worker woken for a debit writes the waiting records in
  the same wake-up (waking a thread and the reactor costs more CPU than a
  small transaction).

The workers stop (after the queued work) when the reactor shuts down or
:meth:`DBPool.close` is called; after a shutdown the pool runs inline.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

import sqlalchemy as sa
from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

from . import engine as _engine

#: how often a transaction whose connection died inside it is run (the first time, and once more)
DISCONNECT_ATTEMPTS = 2


class DBPool:
    """Worker threads bound to one engine, each with a connection of its own."""

    def __init__(self, engine: sa.Engine, reactor=None, *, threads: int = 5, inline: bool = False) -> None:
        self.engine = engine
        self.reactor = reactor
        self.inline = inline or reactor is None
        self._local = threading.local()
        self._connections: list[sa.Connection] = []
        self._lock = threading.Lock()
        self._workers: _Workers | None = None
        self._riders: list[Callable[[], None]] = []
        self._shutdown_trigger = None
        self._closed = False
        if not self.inline:
            self._workers = _Workers(reactor, threads)
            if hasattr(reactor, "addSystemEventTrigger"):
                self._shutdown_trigger = reactor.addSystemEventTrigger("during", "shutdown", self._stop_workers)

    def do(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """Run ``fn(engine, *args, **kwargs)``; a Deferred firing with its result (or failure)."""
        return self._submit(fn, self.engine, *args, **kwargs)

    def transaction(self, thd: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """Run ``thd(conn, *args, **kwargs)`` inside one transaction (committed when it returns)."""
        return self._submit(self._in_transaction, thd, *args, **kwargs)

    def add_rider(self, ride: Callable[[], None]) -> None:
        """Call ``ride()`` on the reactor thread before each job is handed to a worker (not inline): the
        moment to hand over work that was waiting, so that it runs in the same wake-up."""
        self._riders.append(ride)

    def _submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        workers = self._workers
        if workers is not None:
            for ride in self._riders:
                ride()
            return workers.submit(fn, args, kwargs)
        if self._closed:
            return fail(RuntimeError("the store is closed"))
        try:
            return succeed(fn(*args, **kwargs))
        except Exception:
            return fail(Failure())

    def _connection(self) -> sa.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.engine.connect()
            with self._lock:
                self._connections.append(conn)
        return conn

    def _in_transaction(self, thd: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        conn = self._connection()
        for attempt in range(1, DISCONNECT_ATTEMPTS + 1):
            _engine.begin(conn)
            try:
                result = thd(conn, *args, **kwargs)
            except sa.exc.DBAPIError as exc:
                _end(conn, commit=False)
                if exc.connection_invalidated and attempt < DISCONNECT_ATTEMPTS:
                    continue
                raise
            except BaseException:
                _end(conn, commit=False)
                raise
            _end(conn, commit=True)
            return result
        raise AssertionError("unreachable")

    def _stop_workers(self) -> None:
        if self._workers is not None:
            self._workers.stop()
            self._workers = None

    def close(self) -> None:
        """Stop the threads (after the work queued so far) and close the connections."""
        remove_trigger(self.reactor, self._shutdown_trigger)
        self._shutdown_trigger = None
        self._closed = True
        self._stop_workers()
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self.engine.dispose()


def _end(conn: sa.Connection, *, commit: bool) -> None:
    """Commit or roll back the transaction of ``conn``: through SQLAlchemy if it took part, else the driver's."""
    if conn.in_transaction():
        if commit:
            conn.commit()
        else:
            conn.rollback()
        return
    if conn.invalidated:  # the connection died: the server ended the transaction with it
        return
    dbapi_conn = conn.connection.dbapi_connection
    try:
        if commit:
            dbapi_conn.commit()
        else:
            dbapi_conn.rollback()
    except conn.dialect.loaded_dbapi.Error as err:
        lost = conn.dialect.is_disconnect(err, dbapi_conn, None)
        if lost:
            conn.invalidate(err)
        raise sa.exc.DBAPIError.instance("COMMIT" if commit else "ROLLBACK", None, err,
                                         conn.dialect.loaded_dbapi.Error, connection_invalidated=lost,
                                         dialect=conn.dialect) from err


def remove_trigger(reactor, trigger) -> None:
    """Take back a system event trigger of ``reactor`` (None, or one that has run already: nothing to do)."""
    if trigger is None:
        return
    try:
        reactor.removeSystemEventTrigger(trigger)
    except (ValueError, KeyError):
        pass


class _Workers:
    """Threads taking jobs from one queue; finished jobs go back to the reactor thread in batches."""

    def __init__(self, reactor, threads: int) -> None:
        self.reactor = reactor
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._done: list[tuple[Deferred, bool, Any]] = []
        self._done_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, name=f"prepaid-db-{i}", daemon=True)
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Deferred:
        d: Deferred = Deferred()
        self._jobs.put((d, fn, args, kwargs))
        return d

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            d, fn, args, kwargs = job
            try:
                outcome = (d, True, fn(*args, **kwargs))
            except BaseException:
                outcome = (d, False, Failure())
            with self._done_lock:
                first = not self._done
                self._done.append(outcome)
            if first:
                self.reactor.callFromThread(self._deliver)

    def _deliver(self) -> None:
        with self._done_lock:
            done, self._done = self._done, []
        for d, ok, result in done:
            if ok:
                d.callback(result)
            else:
                d.errback(result)

    def stop(self) -> None:
        """Let the queued work finish, then end the threads."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()
