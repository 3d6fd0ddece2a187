"""Call records in batches (billing/db/batch.py): records that arrive together share one transaction, each
caller gets its own stored record; a bad record fails alone, logged in full and counted; nothing waiting is
left behind by close() or the reactor's shutdown."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger

from billing.db.batch import RecordWriter
from billing.db.pool import DBPool
from billing.store import CallRecord, Store
from tests.conftest import fired

from .test_store import ThreadedClock

NUM = "+4915112345678"


def record(call_id, invite_ms=1000):
    return CallRecord(call_id, "demo", "+493012345678", NUM, "from", False, "mobile", "sip:a@h", "sip:a@h",
                      invite_ms, invite_ms + 500, invite_ms + 60_500, "hangup", 200, 200, 60, 249, None)


class CountingPool(DBPool):
    """An inline pool that keeps what each of its transactions was asked to write."""

    def __init__(self, engine) -> None:
        super().__init__(engine, None, inline=True)
        self.batches: list[tuple] = []

    def transaction(self, thd, *args, **kwargs):
        self.batches.append(args[0] if args else ())
        return super().transaction(thd, *args, **kwargs)


@pytest.fixture
def pool(engine):
    pool = CountingPool(engine)
    yield pool
    pool.close()


def stored_ids(pool) -> list[str]:
    with pool.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT call_id FROM call_records ORDER BY id").scalars().all()


def test_records_that_arrive_within_the_window_share_one_transaction(pool):
    """Three records added within the window (nothing else going to the store) are written when it ends, in
    one transaction; each caller's Deferred fires with its own record and id."""
    clock = Clock()
    writer = RecordWriter(pool, clock, window_s=0.005)
    answers = []
    for name in ("a", "b", "c"):
        writer.add(record(name)).addCallback(answers.append)
    assert stored_ids(pool) == [] and answers == []
    clock.advance(0.005)
    assert stored_ids(pool) == ["a", "b", "c"]
    assert [len(batch) for batch in pool.batches] == [3]
    assert [a.call_id for a in answers] == ["a", "b", "c"]
    assert [dataclasses.replace(a, id=None) for a in answers] == [record(n) for n in "abc"]
    assert len({a.id for a in answers}) == 3 and writer.written == 3


def test_a_full_batch_is_written_at_once(pool):
    """With max_batch records waiting the batch goes without waiting for the window."""
    writer = RecordWriter(pool, Clock(), window_s=10, max_batch=2)
    writer.add(record("a"))
    writer.add(record("b"))
    assert stored_ids(pool) == ["a", "b"]


def test_a_bad_record_fails_alone_logged_in_full_and_counted(pool):
    """A record the database refuses (no call_id) fails the batch; the others are written one by one, the
    bad one's Deferred fails, it is counted, and its every field is in the log line."""
    clock = Clock()
    writer = RecordWriter(pool, clock)
    events = []
    writer.log = Logger(observer=events.append)
    outcomes = []
    bad = dataclasses.replace(record(None), caller="+4930555666777")
    for r in (record("a"), bad, record("c")):
        writer.add(r).addCallbacks(lambda s: outcomes.append(s.call_id), lambda f: outcomes.append(f.type))
    clock.advance(writer.window_s)
    assert stored_ids(pool) == ["a", "c"]
    assert outcomes == ["a", sa.exc.IntegrityError, "c"]
    assert (writer.written, writer.failed) == (2, 1)
    lost = [e for e in events if e.get("record") is not None]
    assert len(lost) == 1 and lost[0]["record"] == dataclasses.asdict(bad)


def test_close_and_the_reactors_shutdown_write_what_is_waiting(pool):
    """Records waiting for their window are written by close(), or before the reactor shuts down."""
    writer = RecordWriter(pool, Clock(), window_s=10)
    writer.add(record("a"))
    writer.close()
    assert stored_ids(pool) == ["a"]
    reactor = MemoryReactorClock()
    writer = RecordWriter(pool, reactor, window_s=10)
    writer.add(record("b"))
    for fn, args, kwargs in reactor.triggers["before"]["shutdown"]:
        fn(*args, **kwargs)
    assert stored_ids(pool) == ["a", "b"]


def test_the_store_batches_on_its_threads_and_close_loses_nothing(store_url):
    """Through a threaded Store: records are answered with their ids after the window, or sooner when other
    work goes to the store's threads (they ride with it); records added just before close() are in the
    database when close() returns."""
    clock = ThreadedClock()
    fired(Store.open(store_url, None, inline=True).upgrade())
    store = Store.open(store_url, clock, node_id="n")
    answers = []
    store.add_call_record(record("a")).addCallback(answers.append)
    store.add_call_record(record("b")).addCallback(answers.append)
    clock.advance(store.records.window_s)
    clock.pump(lambda: len(answers) == 2)
    assert [a.call_id for a in answers] == ["a", "b"] and all(a.id for a in answers)
    store.add_call_record(record("c")).addCallback(answers.append)
    store.account("demo", NUM).addCallback(answers.append)  # other work: "c" goes with it, the clock stands
    clock.pump(lambda: len(answers) == 4)  # in either order: on PostgreSQL two workers may take them
    assert [a.call_id for a in answers[2:] if a is not None] == ["c"] and None in answers[2:]
    store.add_call_record(record("d"))
    store.close()
    check = Store.open(store_url, None, inline=True)
    assert [r.call_id for r in fired(check.calls("demo", NUM))] == ["d", "c", "b", "a"]
    check.close()
