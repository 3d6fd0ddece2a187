"""Running the store's SQL off the reactor thread (Buildbot ``db/pool.py`` style, leaner).

:meth:`DBPool.transaction` runs ``thd(conn)`` inside one transaction on one of
the pool's worker threads and fires its Deferred on the reactor thread;
:meth:`DBPool.do` runs ``fn(engine)`` the same way, for functions that manage
their own transactions. Without a reactor (``inline=True``: operator commands,
unit tests on ``task.Clock``) the function runs at once in the caller's thread
and the Deferred has already fired: the same functions, the same SQL, only the
thread differs.

What a call's store work costs here is measured by ``bench/store_calls.py``;
what keeps it cheap:

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
* Work that can wait rides with the next job: a *rider*
  (:meth:`DBPool.add_rider`; the call records) is asked before each job is
  queued and may queue its own first, and :meth:`DBPool.transaction_soon`
  (a debit ahead, a settlement) waits for the next job that is handed over,
  ``soon_s`` at the latest. A node at 100 calls/s then wakes the store's
  thread about once per call instead of three or four times: waking a thread
  and the reactor costs more CPU than a small transaction, and a thread that
  slept runs its SQL about twice as slowly as one that is busy (cold caches).
* Group commit: a worker that takes a transaction job also takes the
  transaction jobs queued behind it and runs them in one transaction; one
  COMMIT for the group, and every job's Deferred fires only after it. A job
  that raises fails alone: the group is rolled back and run again with each
  job in a savepoint of its own, rolled back to it if it raises. The first
  run has no savepoints (jobs rarely raise; a savepoint and its release are
  two statements per job, about a tenth of a call's). A failure at COMMIT
  fails every job of the group (whether it committed is unknown, as for one
  job). ``do`` jobs are never grouped, and a worker runs its jobs in the
  order they were queued. Since a group may run more than once, a ``thd``
  does nothing but its SQL (the same holds for a dead connection's retry).

The workers stop (after the queued work) when the reactor shuts down or
:meth:`DBPool.close` is called; after a shutdown the pool runs inline.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable

import sqlalchemy as sa
from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

from ..observe import JobTimer
from . import engine as _engine
from .prepared import Prepared

#: how often a transaction whose connection died inside it is run (the first time, and once more)
DISCONNECT_ATTEMPTS = 2


class DBPool:
    """Worker threads bound to one engine, each with a connection of its own."""

    def __init__(self, engine: sa.Engine, reactor=None, *, threads: int = 5, inline: bool = False,
                 soon_s: float = 0.05) -> None:
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
        #: the longest a :meth:`transaction_soon` job waits for another to go with
        self.soon_s = soon_s
        self._soon: list[tuple] = []
        self._soon_call = None
        #: each job's time from the ask to the answer, for whoever listens (the node's store latency)
        self.timer = JobTimer(reactor.seconds if reactor is not None else time.monotonic)
        if not self.inline:
            self._workers = _Workers(reactor, threads, self._run_group)
            if hasattr(reactor, "addSystemEventTrigger"):
                self._shutdown_trigger = reactor.addSystemEventTrigger("during", "shutdown", self._stop_workers)

    def do(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """Run ``fn(engine, *args, **kwargs)``; a Deferred firing with its result (or failure)."""
        workers = self._workers
        if workers is not None:
            self._ride()
            return self.timer.track(workers.submit(fn, (self.engine, *args), kwargs, False), "now")
        return self.timer.track(self._inline(fn, self.engine, *args, **kwargs), "now")

    def transaction(self, thd: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """Run ``thd(conn, *args, **kwargs)`` inside one transaction (committed when it returns).

        On the worker threads the transaction may hold other jobs' too, and ``thd`` may run more than once
        (see :meth:`_run_group`); the Deferred fires after the COMMIT that holds it."""
        workers = self._workers
        if workers is not None:
            self._ride()
            return self.timer.track(workers.submit(thd, args, kwargs, True), "now")
        return self.timer.track(self._inline(self._in_transaction, thd, *args, **kwargs), "now")

    def transaction_soon(self, thd: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """:meth:`transaction`, for work nobody waits on at once: it is handed to a worker with the next job,
        or ``soon_s`` later at the latest, and so shares that job's wake-up and COMMIT. Jobs still go to the
        workers in the order they were asked for. Inline: at once, as :meth:`transaction`."""
        if self._workers is None:
            return self.transaction(thd, *args, **kwargs)
        d: Deferred = Deferred()
        self._soon.append((d, thd, args, kwargs, True))
        if self._soon_call is None:
            self._soon_call = self.reactor.callLater(self.soon_s, self._hand_over_soon)
        return self.timer.track(d, "soon")

    def _hand_over_soon(self) -> None:
        # the timer is not cancelled when the jobs leave with another (at 100 calls/s that was two
        # callLater and two cancel per call): it hands over whatever waits when it comes, at most soon_s late
        self._soon_call = None
        if self._soon and self._workers is not None:
            self._ride()

    def add_rider(self, ride: Callable[[], None]) -> None:
        """Call ``ride()`` on the reactor thread before each job is handed to a worker (not inline): the
        moment to hand over work that was waiting, so that it runs in the same wake-up."""
        self._riders.append(ride)

    def _ride(self) -> None:
        for ride in self._riders:
            ride()
        if self._soon:
            soon, self._soon = self._soon, []
            self._workers.put(soon)

    def _inline(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
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
            _commit(conn)
            return result
        raise AssertionError("unreachable")

    def _run_group(self, jobs: list[tuple[Callable[..., Any], tuple, dict]]) -> list[tuple[bool, Any]]:
        """Run transaction jobs ``(thd, args, kwargs)`` on this thread's connection; (ok, result or Failure) each.

        One job: its own transaction (:meth:`_in_transaction`). Several: one transaction, one COMMIT for all,
        and a failure there fails them all (whether it committed is unknown, as for one job). The jobs run
        one after the other without savepoints; when one raises, the transaction is rolled back (nothing
        was committed) and the group runs again with each job in a savepoint of its own, so that a job that
        raises is rolled back to its savepoint and fails alone while the others go on. If that transaction
        breaks before the COMMIT (a lost connection, a savepoint the database no longer has), it is rolled
        back too and each job runs alone. A connection that died is replaced and the transaction run once
        more (:meth:`_in_transaction`).
        """
        if len(jobs) == 1:
            return [_outcome(self._in_transaction, *jobs[0])]
        ran: list[list[tuple[bool, Any]]] = []   # the outcomes, once every job ran: what fails after is the COMMIT

        def together(conn: sa.Connection) -> list[tuple[bool, Any]]:
            outcomes = [(True, thd(conn, *args, **kwargs)) for thd, args, kwargs in jobs]
            ran.append(outcomes)
            return outcomes

        def in_savepoints(conn: sa.Connection) -> list[tuple[bool, Any]]:
            ran.append(_in_savepoints(conn, jobs))
            return ran[-1]
        for run in (together, in_savepoints):
            try:
                return self._in_transaction(run)
            except BaseException:
                if ran:
                    failure = Failure()
                    return [(False, failure)] * len(jobs)
        return [_outcome(self._in_transaction, *job) for job in jobs]

    def _stop_workers(self) -> None:
        if self._soon_call is not None and self._soon_call.active():
            self._soon_call.cancel()
        self._soon_call = None
        if self._workers is not None:
            self._ride()
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


def _outcome(run: Callable[..., Any], thd: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[bool, Any]:
    try:
        return True, run(thd, *args, **kwargs)
    except BaseException:
        return False, Failure()


#: the savepoint that holds one job of a group (SQLAlchemy's own are ``sa_savepoint_<n>``); the COMMIT
#: releases the last one
_SAVEPOINT = Prepared(sa.text("SAVEPOINT prepaid_job"))
_RELEASE = Prepared(sa.text("RELEASE SAVEPOINT prepaid_job"))
#: the same two in one round trip to the server (SQLite's driver takes one statement at a time, and there
#: a statement costs no round trip)
_NEXT_SAVEPOINT = Prepared(sa.text("RELEASE SAVEPOINT prepaid_job; SAVEPOINT prepaid_job"))
_ROLLBACK_TO = Prepared(sa.text("ROLLBACK TO SAVEPOINT prepaid_job"))


def _in_savepoints(conn: sa.Connection, jobs: list[tuple[Callable[..., Any], tuple, dict]]) -> list[tuple[bool, Any]]:
    """Run the jobs of a group one after the other, each in a savepoint of its own: (True, result), or
    (False, its Failure) for a job that raised, rolled back to its savepoint. Raises what breaks the whole
    transaction (a lost connection; a savepoint that cannot be rolled back to or released)."""
    one_trip = conn.dialect.name != "sqlite"
    outcomes = []
    for i, (thd, args, kwargs) in enumerate(jobs):
        if i == 0:
            _SAVEPOINT.rowcount(conn)
        elif one_trip:
            _NEXT_SAVEPOINT.rowcount(conn)
        else:
            _RELEASE.rowcount(conn)
            _SAVEPOINT.rowcount(conn)
        try:
            outcomes.append((True, thd(conn, *args, **kwargs)))
            continue
        except sa.exc.DBAPIError as exc:
            if exc.connection_invalidated:
                raise
            outcomes.append((False, Failure()))
        except BaseException:
            outcomes.append((False, Failure()))
        _ROLLBACK_TO.rowcount(conn)
    return outcomes


def _commit(conn: sa.Connection) -> None:
    """Commit the transaction of ``conn``; if that fails, see that it is rolled back (SQLite keeps it open
    after a failed COMMIT, e.g. of a deferred foreign key) and raise the COMMIT's error."""
    try:
        _end(conn, commit=True)
    except BaseException:
        try:  # the COMMIT's error is the one to report; the rollbacks' are not
            if conn.get_transaction() is not None:
                conn.rollback()
            if not conn.invalidated:
                conn.connection.dbapi_connection.rollback()
        except Exception:
            pass
        raise


def _end(conn: sa.Connection, *, commit: bool) -> None:
    """Commit or roll back the transaction of ``conn``: through SQLAlchemy if it took part (its transaction is
    there, even one a failed statement or COMMIT left inactive), else the driver's."""
    if conn.get_transaction() is not None:
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


#: the most transaction jobs one COMMIT holds (PostgreSQL: a savepoint that writes takes a subtransaction id,
#: and a transaction with more than 64 of them makes every other session's snapshots slower)
MAX_GROUP = 32

#: what tells a worker to end (after the jobs queued before it)
_STOP: Any = object()


class _Workers:
    """Threads taking jobs from one queue; finished jobs go back to the reactor thread in batches.

    A worker that takes a transaction job also takes the transaction jobs queued right behind it (up to
    :data:`MAX_GROUP`) and hands them to ``run_group`` together: one transaction, one COMMIT. A ``do``
    job (it manages its own transactions) is never grouped, and the jobs behind it wait for it, so one
    worker still runs its jobs in the order they were queued.
    """

    def __init__(self, reactor, threads: int, run_group: Callable[[list], list[tuple[bool, Any]]]) -> None:
        self.reactor = reactor
        self.run_group = run_group
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._done: list[tuple[Deferred, bool, Any]] = []
        self._done_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, name=f"prepaid-db-{i}", daemon=True)
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], args: tuple, kwargs: dict, grouped: bool) -> Deferred:
        """Queue ``fn(*args, **kwargs)`` (``grouped``: ``fn`` is a thd, run by ``run_group``)."""
        d: Deferred = Deferred()
        self._jobs.put((d, fn, args, kwargs, grouped))
        return d

    def put(self, jobs: list[tuple]) -> None:
        """Queue jobs made as :meth:`submit` makes them, in order."""
        for job in jobs:
            self._jobs.put(job)

    def _work(self) -> None:
        jobs = self._jobs
        job = None  # a job taken while grouping, to run next
        while True:
            if job is None:
                job = jobs.get()
            if job is _STOP:
                return
            d, fn, args, kwargs, grouped = job
            job = None
            if not grouped:
                try:
                    outcomes = [(d, True, fn(*args, **kwargs))]
                except BaseException:
                    outcomes = [(d, False, Failure())]
                self._hand_back(outcomes)
                continue
            deferreds, group = [d], [(fn, args, kwargs)]
            while len(group) < MAX_GROUP:
                try:
                    job = jobs.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP or not job[4]:
                    break  # run after this group
                deferreds.append(job[0])
                group.append(job[1:4])
                job = None
            try:
                outcomes = self.run_group(group)
            except BaseException:  # a rollback that failed: the jobs fail, the worker goes on
                outcomes = [(False, Failure())] * len(group)
            self._hand_back([(d, ok, result) for d, (ok, result) in zip(deferreds, outcomes)])

    def _hand_back(self, outcomes: list[tuple[Deferred, bool, Any]]) -> None:
        with self._done_lock:
            first = not self._done
            self._done.extend(outcomes)
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
            self._jobs.put(_STOP)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()
