"""The store's worker threads (billing/db/pool.py): work off the reactor thread, answers back through
callFromThread in batches, a connection kept per worker, a dead PostgreSQL connection replaced, close()."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from twisted.python.failure import Failure

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


# -- group commit: transaction jobs queued together share one COMMIT -----------------------------------

class _Reader:
    """Another connection, opened beforehand, reading without a transaction of the store's kind (SQLAlchemy's
    begin would be SQLite's BEGIN IMMEDIATE and wait for the writer): what is committed, as it reads it."""

    def __init__(self, engine) -> None:
        self.raw = engine.raw_connection()

    def __call__(self) -> list[str]:
        cursor = self.raw.cursor()
        cursor.execute("SELECT number FROM first_callers ORDER BY number")
        found = [row[0] for row in cursor.fetchall()]
        cursor.close()
        self.raw.rollback()
        return found

    def close(self) -> None:
        self.raw.close()


def _queued_behind_a_gate(pool):
    """Hold the worker on a ``do`` job until the returned Event is set, so that what is queued meanwhile is
    found queued together."""
    gate = threading.Event()
    pool.do(lambda _engine: gate.wait(10))
    return gate


def test_jobs_queued_together_commit_together_and_are_answered_after_that_commit(engine, clock, pool):
    """Three transactions queued behind a busy worker run in one transaction: while the last of them runs,
    the first one's row is not yet visible to another connection and no answer has gone to the reactor;
    after the COMMIT every row is there and all three Deferreds fire, from one callFromThread."""
    running, release, answers = threading.Event(), threading.Event(), []
    visible = _Reader(engine)
    gate = _queued_behind_a_gate(pool)

    def last(conn):
        _mark(conn, "+4930502")
        running.set()
        assert release.wait(10)
        return "last"
    pool.transaction(_mark, "+4930500").addCallback(answers.append)
    pool.transaction(_mark, "+4930501").addCallback(answers.append)
    pool.transaction(last).addCallback(answers.append)
    gate.set()
    assert running.wait(10)
    try:
        assert visible() == []
        clock.pump(clock.queued.empty)  # the gate's own answer
        assert answers == []
    finally:
        release.set()
    clock.pump(lambda: len(answers) == 3)
    assert clock.queued.empty()  # one delivery brought the three
    assert answers[2] == "last"
    assert visible() == ["+4930500", "+4930501", "+4930502"]
    visible.close()


def test_a_job_that_raises_in_a_group_rolls_back_and_fails_alone(engine, clock, pool):
    """In a group, a job that raises (its own exception, or the database's: a UNIQUE violation, which on
    PostgreSQL aborts the transaction but for a savepoint) is rolled back to its savepoint and its Deferred
    fails; the jobs before and after it commit and succeed."""
    answers = {}
    gate = _queued_behind_a_gate(pool)

    def raises(conn):
        _mark(conn, "+4930511")
        raise ValueError("no")

    def duplicate(conn):
        _mark(conn, "+4930512")
        _mark(conn, "+4930510")  # the first job's row: refused
    for name, thd in [("a", lambda conn: _mark(conn, "+4930510")), ("raises", raises), ("dup", duplicate),
                      ("b", lambda conn: _mark(conn, "+4930513"))]:
        pool.transaction(thd).addBoth(lambda result, name=name: answers.__setitem__(name, result))
    gate.set()
    clock.pump(lambda: len(answers) == 4)
    assert answers["a"].startswith("prepaid-db") and answers["b"].startswith("prepaid-db")
    assert answers["raises"].check(ValueError)
    assert answers["dup"].check(sa.exc.IntegrityError)
    assert _first_callers(engine) == ["+4930510", "+4930513"]


def test_a_group_whose_jobs_all_succeed_runs_without_savepoints(tmp_path, clock):
    """Jobs queued together that all succeed run in one transaction with no SAVEPOINT at all (two statements
    a job saved); a group with a job that raises runs again in savepoints, and that job fails alone."""
    engine = db_engine.create_engine(f"sqlite:///{tmp_path}/store.db")
    db_engine.upgrade(engine)
    sent: list[str] = []
    sa.event.listen(engine, "connect", lambda dbapi_conn, _record: dbapi_conn.set_trace_callback(sent.append))
    engine.dispose()    # the migration's connection goes: the worker's is a new one, traced
    pool = DBPool(engine, clock, threads=1)
    try:
        answers = []
        gate = _queued_behind_a_gate(pool)
        for number in ("+4930540", "+4930541", "+4930542"):
            pool.transaction(_mark, number).addBoth(answers.append)
        gate.set()
        clock.pump(lambda: len(answers) == 3)
        assert [s for s in sent if "SAVEPOINT" in s.upper()] == [], sent
        assert sum(s.upper().startswith("INSERT INTO FIRST_CALLERS") for s in sent) == 3, sent

        def raises(conn):
            _mark(conn, "+4930544")
            raise ValueError("no")
        gate = _queued_behind_a_gate(pool)
        pool.transaction(_mark, "+4930543").addBoth(answers.append)
        pool.transaction(raises).addBoth(answers.append)
        gate.set()
        clock.pump(lambda: len(answers) == 5)
        assert answers[4].check(ValueError)
        assert any("SAVEPOINT" in s.upper() for s in sent)
        assert _first_callers(engine) == ["+4930540", "+4930541", "+4930542", "+4930543"]
    finally:
        pool.close()
        engine.dispose()


def _fk_tables(engine) -> None:
    """Tables whose foreign key is checked at COMMIT (DEFERRABLE INITIALLY DEFERRED), on either backend."""
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE fk_parent (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE fk_child (id INTEGER PRIMARY KEY, "
                             "parent_id INTEGER REFERENCES fk_parent (id) DEFERRABLE INITIALLY DEFERRED)")
        conn.exec_driver_sql("INSERT INTO fk_parent (id) VALUES (1)")


def _child(conn, child_id: int, parent_id: int) -> int:
    conn.exec_driver_sql(f"INSERT INTO fk_child (id, parent_id) VALUES ({child_id}, {parent_id})")
    return child_id


def _children(engine) -> list[int]:
    with engine.connect() as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT id FROM fk_child ORDER BY id")]


def test_a_failed_commit_fails_every_job_of_the_group_and_the_worker_goes_on(engine, clock, pool):
    """A group whose COMMIT fails (a deferred foreign key, checked only then) commits nothing and fails
    every job's Deferred with the COMMIT's error, whether or not the job caused it; the worker's connection
    is left usable: the next transaction commits."""
    _fk_tables(engine)
    answers = []
    gate = _queued_behind_a_gate(pool)
    for child_id, parent_id in [(1, 1), (2, 99), (3, 1)]:
        pool.transaction(_child, child_id, parent_id).addBoth(answers.append)
    gate.set()
    clock.pump(lambda: len(answers) == 3)
    assert all(isinstance(a, Failure) and a.check(sa.exc.IntegrityError) for a in answers), answers
    assert _children(engine) == []
    pool.transaction(_child, 4, 1).addBoth(answers.append)
    clock.pump(lambda: len(answers) == 4)
    assert answers[3] == 4 and _children(engine) == [4]


def test_a_failed_commit_of_one_transaction_leaves_the_connection_usable(engine, clock, pool):
    """A transaction of its own whose COMMIT fails fails its Deferred, and the next one commits (SQLite keeps
    a transaction open after a failed COMMIT: the pool rolls it back)."""
    _fk_tables(engine)
    answers = []
    pool.transaction(_child, 1, 99).addBoth(answers.append)
    clock.pump(lambda: len(answers) == 1)
    assert isinstance(answers[0], Failure) and answers[0].check(sa.exc.IntegrityError)
    pool.transaction(_child, 2, 1).addBoth(answers.append)
    clock.pump(lambda: len(answers) == 2)
    assert answers[1] == 2 and _children(engine) == [2]


def test_do_jobs_are_not_grouped_and_keep_their_place_in_the_queue(engine, clock, pool):
    """A ``do`` job queued between transactions runs on its own, after the transactions queued before it
    have committed and before those queued after it run."""
    answers = []
    gate = _queued_behind_a_gate(pool)
    pool.transaction(_mark, "+4930520").addCallback(lambda _: answers.append("before"))
    pool.do(lambda engine: answers.append(("do sees", _first_callers(engine))))
    pool.transaction(_mark, "+4930521").addCallback(lambda _: answers.append("after"))
    gate.set()
    clock.pump(lambda: len(answers) == 3)
    assert answers == [("do sees", ["+4930520"]), "before", "after"] or \
        answers == ["before", ("do sees", ["+4930520"]), "after"]
    assert _first_callers(engine) == ["+4930520", "+4930521"]


@pytest.mark.postgres
def test_a_group_whose_connection_died_runs_again_on_a_new_one_and_commits_once(pg_schema_url_factory):
    """The server ends the worker's connection while a group waits: the group finds it dead at its first
    statement, runs again on a new connection, and each job commits once."""
    url = pg_schema_url_factory()
    engine = db_engine.create_engine(url)
    db_engine.upgrade(engine)
    clock = ThreadedClock()
    pool = DBPool(engine, clock, threads=1)
    try:
        pids = []
        pool.transaction(lambda conn: _PID.scalar(conn)).addCallback(pids.append)
        clock.pump(lambda: len(pids) == 1)
        gate = _queued_behind_a_gate(pool)
        killer = sa.create_engine(url)
        with killer.begin() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]}).scalar()
        killer.dispose()
        answers = []
        for number in ("+4930530", "+4930531"):
            pool.transaction(_mark, number).addBoth(answers.append)
        pool.transaction(lambda conn: _PID.scalar(conn)).addBoth(answers.append)
        gate.set()
        clock.pump(lambda: len(answers) == 3)
        assert answers[2] != pids[0], answers
        assert _first_callers(engine) == ["+4930530", "+4930531"]
    finally:
        pool.close()
        engine.dispose()


# -- work that can wait: transaction_soon --------------------------------------------------------------

def _seen_in_transaction(conn) -> list[str]:
    return conn.execute(sa.select(FC.c.number).order_by(FC.c.number)).scalars().all()


def test_work_that_can_wait_goes_with_the_next_job_and_commits_with_it(engine, clock, pool):
    """A transaction_soon job is handed over just before the next job, in the same group: that job already
    sees its (uncommitted) row, and both are answered by one delivery after their COMMIT."""
    answers = []
    gate = _queued_behind_a_gate(pool)
    pool.transaction_soon(_mark, "+4930600").addCallback(lambda _: answers.append("soon"))
    pool.transaction(_seen_in_transaction).addCallback(answers.append)
    gate.set()
    clock.pump(lambda: len(answers) == 2)
    assert answers == ["soon", ["+4930600"]]
    assert _first_callers(engine) == ["+4930600"]


def test_work_that_can_wait_goes_alone_after_soon_s_at_the_latest(engine, clock, pool):
    """With no other job coming, a transaction_soon job is handed over when ``soon_s`` has passed on the
    reactor's clock, and commits."""
    answers = []
    pool.transaction_soon(_mark, "+4930610").addCallback(answers.append)
    clock.advance(pool.soon_s)
    clock.pump(lambda: len(answers) == 1)
    assert _first_callers(engine) == ["+4930610"]


def test_close_writes_the_work_that_was_waiting(engine, clock):
    """close() hands over what transaction_soon holds, and it commits before close() returns."""
    pool = DBPool(engine, clock, threads=1)
    pool.transaction_soon(_mark, "+4930620")
    pool.close()
    assert _first_callers(engine) == ["+4930620"]
