"""Call records written in batches: those that arrive close together share one transaction.

A node at 100 calls/s writes a record every 10 ms or so; one transaction (and
one handoff to the store's thread, which wakes it and then the reactor) per
record costs more than the record's INSERT. :class:`RecordWriter` collects what
:meth:`RecordWriter.add` is given and writes it in one transaction when the
store is next handed other work (it rides with it: the same wake-up of the
store's thread, see :meth:`billing.db.pool.DBPool.add_rider`), when
``max_batch`` are waiting, or ``window_s`` after the first of them at the
latest. Each caller's Deferred fires with its own stored record (with its id).

Nothing is lost silently:

* a batch that fails is written again one record per transaction, so one
  bad record does not take the others with it;
* a record that fails on its own is logged in full (every field, so an
  operator can put it back), counted in :attr:`RecordWriter.failed`, and its
  caller's Deferred fails;
* :meth:`RecordWriter.flush` writes what is waiting at once: the store calls
  it when it closes, and before the reactor shuts down.

Without a reactor (the writer of an inline store: operator commands, unit
tests) every record is written at once, in its own transaction.
"""

from __future__ import annotations

import dataclasses

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger

from . import calls
from .pool import remove_trigger
from .rows import CallRecord


class RecordWriter:
    """Batches call records into transactions on a :class:`billing.db.pool.DBPool`; ``reactor`` times the
    batches (None: no batches)."""

    log = Logger()

    def __init__(self, pool, reactor=None, *, window_s: float = 0.05, max_batch: int = 200) -> None:
        self.pool = pool
        self.reactor = reactor
        self.window_s = window_s
        self.max_batch = max_batch
        #: records written, and records that could not be written (each logged in full)
        self.written = 0
        self.failed = 0
        self._waiting: list[tuple[CallRecord, Deferred]] = []
        self._timer = None
        self._trigger = None
        if reactor is not None:
            pool.add_rider(self._ride)
        if hasattr(reactor, "addSystemEventTrigger"):
            self._trigger = reactor.addSystemEventTrigger("before", "shutdown", self.flush)

    def add(self, record: CallRecord) -> Deferred:
        """Write ``record`` with the next batch; fires with the stored record (with its id)."""
        if self.reactor is None:
            return self._write_alone(record)
        d: Deferred = Deferred()
        self._waiting.append((record, d))
        if len(self._waiting) >= self.max_batch:
            self.flush()
        elif self._timer is None:
            self._timer = self.reactor.callLater(self.window_s, self.flush)
        return d

    def flush(self) -> Deferred:
        """Write what is waiting now; fires when it is written (or has failed, record by record)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        batch, self._waiting = self._waiting, []
        if not batch:
            return succeed(None)
        done = self.pool.transaction(calls.add_many, tuple(record for record, _ in batch))
        done.addCallbacks(self._written, self._batch_failed, callbackArgs=(batch,), errbackArgs=(batch,))
        return done

    def _ride(self) -> None:
        if self._waiting:
            self.flush()

    def close(self) -> None:
        """Flush, and stop listening for the reactor's shutdown."""
        remove_trigger(self.reactor, self._trigger)
        self._trigger = None
        self.flush()

    def _written(self, stored: list[CallRecord], batch) -> None:
        self.written += len(stored)
        for record, (_, d) in zip(stored, batch):
            d.callback(record)

    def _batch_failed(self, failure, batch):
        self.log.warn("{n} call records did not go in one transaction ({why}); writing them one by one",
                      n=len(batch), why=failure.getErrorMessage())
        return DeferredList([self._write_alone(record).chainDeferred(d) for record, d in batch])

    def _write_alone(self, record: CallRecord) -> Deferred:
        d = self.pool.transaction(calls.add_many, (record,))

        def stored(records: list[CallRecord]) -> CallRecord:
            self.written += 1
            return records[0]

        def lost(failure):
            self.failed += 1
            self.log.failure("call record NOT written: {record}", failure, record=dataclasses.asdict(record))
            return failure
        return d.addCallbacks(stored, lost)
