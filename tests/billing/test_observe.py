"""What the store lets the node watch (billing/observe.py): each job's time and failure, each top-up credited."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from billing.db.pool import DBPool
from billing.db.rows import NoAccount
from billing.observe import JobTiming, Topup
from tests.conftest import fired

from .test_store import DEMO, ThreadedClock


def test_pool_jobs_are_timed_on_the_reactor_clock_and_failures_named(engine):
    """A job's time runs from the ask to the answer on the reactor thread (the clock moved 0.03 s meanwhile);
    a job failing with a database-side error names it; a refusal (StoreError) is not an error; "soon" jobs
    are told apart. Nobody listening: nothing is added to the Deferreds."""
    clock = ThreadedClock()
    pool = DBPool(engine, clock, threads=1)
    try:
        seen: list[JobTiming] = []
        stop = pool.timer.listeners.listen(seen.append)
        answers: list = []
        pool.transaction(lambda conn: conn.execute(sa.text("select 1")).scalar()).addBoth(answers.append)
        clock.advance(0.03)
        clock.pump(lambda: len(answers) == 1)

        def broken(conn):
            raise ValueError("disk on fire")

        def refused(conn):
            raise NoAccount("no account")
        pool.transaction(broken).addErrback(lambda f: answers.append(f.type))
        pool.transaction(refused).addErrback(lambda f: answers.append(f.type))
        pool.transaction_soon(lambda conn: 2).addBoth(answers.append)
        clock.advance(pool.soon_s)
        clock.pump(lambda: len(answers) == 4)
        assert answers == [1, ValueError, NoAccount, 2]
        assert seen[0] == JobTiming("now", pytest.approx(0.03), None)
        assert [(t.mode, t.error) for t in seen[1:]] == [("now", "ValueError"), ("now", None), ("soon", None)]
        stop()
        pool.transaction(lambda conn: 3).addBoth(answers.append)
        clock.pump(lambda: len(answers) == 5)
        assert len(seen) == 4
    finally:
        pool.close()


def test_topups_are_told_once_with_method_amount_and_bonus(store):
    """A payment top-up, a manual top-up and an API credit are told (method = ledger source, amount without
    the bonus); a repeated reference, a correction and a debit are not."""
    told: list[Topup] = []
    store.on_topup(told.append)
    number = "+4915112345678"
    fired(store.topup(DEMO, number, 1000, source="paypal", external_ref="PAY-1", actor="webhook:paypal"))
    fired(store.topup(DEMO, number, 1000, source="paypal", external_ref="PAY-1", actor="webhook:paypal"))
    fired(store.manual(DEMO, number, 2000, kind="topup", external_ref="m-1", actor="portal:anna",
                       audit_actor="portal:anna"))
    fired(store.manual(DEMO, number, 500, kind="api_credit", external_ref="k:1", actor="api:demo",
                       audit_actor="api:k", source="api"))
    fired(store.manual(DEMO, number, 300, kind="correction", external_ref="c-1", actor="portal:anna",
                       audit_actor="portal:anna"))
    fired(store.manual(DEMO, number, -300, kind="manual", external_ref="d-1", actor="portal:anna",
                       audit_actor="portal:anna"))
    assert told == [Topup("demo", "paypal", 1000, 100), Topup("demo", "manual", 2000, 300),
                    Topup("demo", "api", 500, 0)]
