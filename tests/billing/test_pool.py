"""The store's worker threads (billing/db/pool.py): work off the reactor thread, answers back through
callFromThread in batches, a connection kept per worker, a dead PostgreSQL connection replaced, close()."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from billing.db import engine as db_engine
from billing.db import model
from billing.db.pool import DBPool
from billing.db.prepared import Prepared
from tests.conftest import fired

from .test_store import ThreadedClock

FC = model.first_callers


def _first_callers(engine) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(sa.select(FC.c.number).order_by(FC.c.number)).scalars().all()


def _mark(conn, number: str) -> str:
    conn.execute(sa.insert(FC).values(profile="demo", number=number, first_call_ms=1))
    return threading.current_thread().name


@pytest.fixture
def clock():
    return ThreadedClock()


@pytest.fixture
def pool(engine, clock):
    """A pool of one worker thread whose answers wait for ``clock.pump``."""
    pool = DBPool(engine, clock, threads=1)
    yield pool
    pool.close()


def test_work_runs_on_a_worker_and_is_answered_on_the_reactor_thread(engine, clock, pool):
    """A transaction runs on a worker thread and commits; its Deferred fires only when the reactor thread
    runs what the worker handed back; a thd that raises rolls back and fails its Deferred."""
    answers = []
    pool.transaction(_mark, "+4930100").addBoth(answers.append)

    def fails(conn):
        _mark(conn, "+4930200")
        raise ValueError("no")
    pool.transaction(fails).addErrback(lambda f: answers.append(f.trap(ValueError)))
    assert answers == []
    clock.pump(lambda: len(answers) == 2)
    assert answers[0].startswith("prepaid-db") and answers[1] is ValueError
    assert _first_callers(engine) == ["+4930100"]


def test_answers_ready_together_reach_the_reactor_in_one_call(engine, clock, pool):
    """Twenty transactions that finish while the reactor is busy cost it one callFromThread, not twenty."""
    gate, last, answers = threading.Event(), threading.Event(), []
    pool.do(lambda _engine: gate.wait(10))
    for i in range(20):
        pool.transaction(_mark, f"+49301{i:02d}").addCallback(answers.append)
    pool.do(lambda _engine: last.set())
    gate.set()
    assert last.wait(10)
    assert clock.queued.qsize() == 1
    clock.pump(lambda: len(answers) == 20)
    assert len(_first_callers(engine)) == 20


def test_a_worker_keeps_its_connection_between_transactions(clock, pool):
    """Two transactions on one worker run on the same DB-API connection (no checkout per transaction)."""
    seen = []
    for _ in range(2):
        pool.transaction(lambda conn: conn.connection.dbapi_connection).addCallback(seen.append)
    clock.pump(lambda: len(seen) == 2)
    assert seen[0] is seen[1]


_MARK = Prepared(sa.insert(FC).values(profile="demo", number=sa.bindparam("number"), first_call_ms=1))


@pytest.mark.parametrize("fail", [False, True])
def test_sqlalchemys_statements_and_prepared_ones_share_the_transaction(engine, fail):
    """A thd that mixes prepared statements, SQLAlchemy's execute and a savepoint runs in one transaction:
    everything is committed together, or (the thd raises) nothing is."""
    pool = DBPool(engine, None, inline=True)

    def thd(conn):
        _MARK.rowcount(conn, number="+4930400")
        _mark(conn, "+4930401")
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
            _MARK.rowcount(conn, number="+4930400")
        _MARK.rowcount(conn, number="+4930402")
        if fail:
            raise ValueError("no")
    try:
        for _ in range(2):  # and the connection is ready for the next one
            d = pool.transaction(thd)
            if fail:
                assert d.addErrback(lambda f: f.trap(ValueError)).result is ValueError
                assert _first_callers(engine) == []
            else:
                fired(d)
                assert _first_callers(engine) == ["+4930400", "+4930401", "+4930402"]
                fired(pool.transaction(lambda conn: conn.execute(sa.delete(FC))))
    finally:
        pool.close()


def test_close_finishes_the_queued_work_and_later_work_fails(engine, clock):
    """close() returns after what was queued has run and committed; work asked of a closed pool fails."""
    pool = DBPool(engine, clock, threads=2)
    for i in range(10):
        pool.transaction(_mark, f"+49302{i:02d}")
    pool.close()
    assert len(_first_callers(engine)) == 10
    with pytest.raises(RuntimeError, match="closed"):
        fired(pool.transaction(_mark, "+4930299"))


_PID = Prepared(sa.select(sa.func.pg_backend_pid()))


@pytest.mark.postgres
@pytest.mark.parametrize("first_statement", ["sqlalchemy", "prepared"])
def test_a_dead_postgresql_connection_is_replaced_and_the_transaction_runs_once(pg_schema_url_factory,
                                                                                first_statement):
    """The server ends the worker's connection while it is idle (a restart, an idle timeout): the next
    transaction finds it dead at its first statement (SQLAlchemy's or a Prepared one), runs again on a new
    connection and commits once."""
    url = pg_schema_url_factory()
    engine = db_engine.create_engine(url)
    db_engine.upgrade(engine)
    pool = DBPool(engine, None, threads=1, inline=True)
    try:
        def pid(conn):
            if first_statement == "sqlalchemy":
                return conn.execute(sa.select(sa.func.pg_backend_pid())).scalar()
            return _PID.scalar(conn)

        def mark_and_pid(conn):
            found = pid(conn)
            _mark(conn, "+4930300")
            return found
        old = fired(pool.transaction(pid))
        killer = sa.create_engine(url)
        with killer.begin() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": old}).scalar()
        killer.dispose()
        new = fired(pool.transaction(mark_and_pid))
        assert new != old
        assert _first_callers(engine) == ["+4930300"]
    finally:
        pool.close()
