"""Two nodes (two processes) run calls of one caller at once on one PostgreSQL store: the shared balance
never goes below zero, every call settles, and the money adds up to the cent.

Each child process runs 10 sessions on a real reactor with time scaled 60x (a
simulated minute per real second, bounded to a few seconds), then settles them
and exits. The calls together want more than the balance holds, so the
conditional debits decide who gets the last minutes.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from billing.db.model import call_sessions
from tests.conftest import fired

from .test_crash import child_process, seeded_store

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
NUMBER = "+4930777000222"
START_CENTS = 5000  # 25 minutes at 1.99; 20 calls of 3 minutes would need 60

CHILD = r"""
import json, sys
from decimal import Decimal
from twisted.internet import defer, reactor, task
from billing.store import Store
from billing.db.sessions import SqlSessionStore
from billing.profile import BillingProfile, CallerClass, Increment
from billing.session import CallBilling, NoObserver, Refused

url, number, node = sys.argv[1], sys.argv[2], sys.argv[3]
SPEED = 60.0

class Scaled:
    def __init__(self):
        self.t0 = reactor.seconds()
    def seconds(self):
        return self.t0 + (reactor.seconds() - self.t0) * SPEED
    def callLater(self, delay, f, *a, **kw):
        return reactor.callLater(delay / SPEED, f, *a, **kw)

class Quiet(NoObserver):
    def __init__(self):
        self.exhausted = 0
    def session_exhausted(self, event): self.exhausted += 1

out = {"opened": 0, "refused": 0, "exhausted": 0, "charged": 0, "failures": []}

@defer.inlineCallbacks
def main():
    store = Store.open(url, reactor, node_id=node, threads=4)
    clock = Scaled()
    billing = CallBilling(SqlSessionStore(store, lease_s=60), clock, node_id=node, lease_s=60,
                          log_failure=lambda f: out["failures"].append(f.getErrorMessage()))
    profile = BillingProfile("demo", Decimal("1.99"), Decimal("2.49"), increment=Increment(60, 60))
    quiet = Quiet()
    sessions = []
    for i in range(10):
        try:
            s = yield billing.open(profile, number, CallerClass.LANDLINE, f"{node}-{i}", quiet)
        except Refused:
            out["refused"] += 1
            continue
        s.start_charging()
        sessions.append(s)
    out["opened"] = len(sessions)
    yield task.deferLater(reactor, 180 / SPEED, lambda: None)  # three simulated minutes
    for s in sessions:
        settlement = yield s.settle(None, "hangup")
        out["charged"] += settlement.charge_cents
    out["exhausted"] = quiet.exhausted
    billing.stop()
    store.close()

def done(result):
    if result is not None and hasattr(result, "getTraceback"):
        out["failures"].append(result.getTraceback())
    print(json.dumps(out), flush=True)
    reactor.stop()

reactor.callWhenRunning(lambda: main().addBoth(done))
reactor.callLater(30, reactor.stop)  # never outlive the test
reactor.run()
"""


def test_two_nodes_share_one_balance_without_overspending(pg_schema_url_factory):
    """20 calls from two processes on 50.00 EUR at 1.99/min: never below zero, 25 minutes at most are sold,
    and start = balance + charges, with the ledger summing to the balance."""
    url = pg_schema_url_factory()
    store = seeded_store(url, NUMBER, START_CENTS)
    try:
        children = [child_process(CHILD, url, NUMBER, node) for node in ("node-a", "node-b")]
        reports = []
        for child in children:
            stdout, stderr = child.communicate(timeout=60)
            assert child.returncode == 0, stderr
            reports.append(json.loads(stdout.strip().splitlines()[-1]))
        assert all(r["failures"] == [] for r in reports), reports
        assert sum(r["opened"] for r in reports) == 20

        def thd(conn):
            return conn.execute(sa.select(call_sessions.c.state, call_sessions.c.charged_cents)).all()
        rows = fired(store.run(thd))
        assert len(rows) == 20 and {r.state for r in rows} == {"settled"}
        charged = sum(r.charged_cents for r in rows)
        assert charged == sum(r["charged"] for r in reports)
        account = fired(store.account("demo", NUMBER))
        assert account.balance_cents >= 0
        assert account.balance_cents + charged == START_CENTS
        assert fired(store.ledger_sum(account.id)) == account.balance_cents
        assert charged <= START_CENTS and charged % 199 == 0
        assert sum(r["exhausted"] for r in reports) > 0  # the credit did run out for some calls
    finally:
        store.close()
