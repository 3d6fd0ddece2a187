"""A node killed mid-call: its session is settled by ``prepaid reconcile`` with nothing lost or created.

A real child process opens a call session on the store (SQLite file, or a
PostgreSQL schema of the test's own), starts charging (1/1, so 60 s = 1.99 EUR
is reserved ahead), renews its lease every second, and is killed with SIGKILL.
After its lease runs out, the ``prepaid reconcile`` command settles the call up
to the last renewal. This test waits real time (a few seconds, bounded): the
lease of a dead process can only run out on the wall clock.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

from decimal import Decimal

import pytest
import sqlalchemy as sa

from billing.db.model import call_sessions
from billing.profile import Increment
from billing.rating import Tariff, call_charge_cents
from billing.store import Store
from tests.conftest import fired

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUMBER = "+4930555000111"
START_CENTS = 1000

CHILD = r"""
import sys
from decimal import Decimal
from twisted.internet import reactor
from billing.store import Store
from billing.db.sessions import SqlSessionStore
from billing.profile import BillingProfile, CallerClass, Increment
from billing.session import CallBilling, NoObserver

url, number = sys.argv[1], sys.argv[2]
store = Store.open(url, reactor, node_id="doomed")
profile = BillingProfile("demo", Decimal("1.99"), Decimal("2.49"), increment=Increment(1, 1))

class Quiet(NoObserver):
    pass

billing = CallBilling(SqlSessionStore(store, lease_s=2), reactor, node_id="doomed", lease_s=2,
                      log_failure=lambda f: print("FAILURE", f.getErrorMessage(), flush=True))

def opened(session):
    session.start_charging()
    def check():
        if session.paid_s > 0:
            print("CHARGING", session.session_id, session.start_ms, flush=True)
        else:
            reactor.callLater(0.05, check)
    check()

def failed(f):
    print("FAILED", f.getErrorMessage(), flush=True)
    reactor.stop()

billing.open(profile, number, CallerClass.LANDLINE, "call-doomed", Quiet()).addCallbacks(opened, failed)
reactor.callLater(30, reactor.stop)  # never outlive the test
reactor.run()
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def crash_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/crash.db"
    return request.getfixturevalue("pg_schema_url_factory")()


def write_config(tmp_path, url: str) -> str:
    with open(os.path.join(ROOT, "conf", "prepaid.toml"), encoding="utf-8") as f:
        text = f.read()
    text, n = re.subn(r'(?m)^url = "sqlite:///../var/prepaid.db"$', f'url = "{url}"', text)
    assert n == 1
    path = tmp_path / "prepaid.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def seeded_store(url: str, number: str, cents: int):
    """A migrated inline store on ``url`` where ``number`` has ``cents`` under profile ``demo``."""
    store = Store.open(url, inline=True, node_id="test")
    fired(store.upgrade())
    fired(store.credit("demo", number, cents, kind="manual", source="test", external_ref="seed", actor="test"))
    return store


def child_process(code: str, *argv: str) -> subprocess.Popen:
    """``python -c code argv...`` from the repository root, its output piped."""
    return subprocess.Popen([sys.executable, "-c", code, *argv], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def row_of(store, session_id):
    def thd(conn):
        return conn.execute(sa.select(call_sessions).where(call_sessions.c.id == session_id)).one()
    return fired(store.run(thd))


def test_a_killed_call_is_settled_by_reconcile_with_nothing_lost_or_created(crash_url, tmp_path):
    """SIGKILL mid-call, then `prepaid reconcile`: charged up to the last renewal (at most the 60 s reserved),
    the rest refunded; balance + charge == starting balance, and the ledger sums to the balance."""
    store = seeded_store(crash_url, NUMBER, START_CENTS)
    env = dict(os.environ, PYTHONPATH=ROOT)
    try:
        child = child_process(CHILD, crash_url, NUMBER)
        try:
            line = child.stdout.readline()
            if not line.startswith("CHARGING"):
                child.kill()
                pytest.fail(f"the child did not start charging: {line!r} {child.stderr.read()}")
            _, session_id, start_ms = line.split()
            time.sleep(1.5)  # let it renew its lease at least once
            row = row_of(store, session_id)
            assert row.state == "open" and row.renewed_ms > row.opened_ms
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
            child.stdout.close()
            child.stderr.close()
        assert fired(store.account("demo", NUMBER)).balance_cents == START_CENTS - 199  # 60 s at 1.99 ahead
        row = row_of(store, session_id)
        wait_s = (row.lease_until_ms - time.time() * 1000) / 1000 + 0.2
        if wait_s > 0:
            time.sleep(min(wait_s, 5))

        out = subprocess.run([sys.executable, "-m", "b2bua.node.cli", "reconcile", "--config",
                              write_config(tmp_path, crash_url), "--json"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        settled = json.loads(out.stdout)
        assert [s["session_id"] for s in settled] == [session_id]

        row = row_of(store, session_id)
        used_s = -(-(row.renewed_ms - int(start_ms)) // 1000)
        expected = call_charge_cents(Tariff(Decimal("1.99"), Increment(1, 1)), used_s)
        assert row.state == "settled" and row.end_reason == "lease expired"
        assert row.billed_s == used_s and 1 <= used_s < 60
        assert row.charged_cents == settled[0]["charge_cents"] == expected
        account = fired(store.account("demo", NUMBER))
        assert account.balance_cents + row.charged_cents == START_CENTS
        assert fired(store.ledger_sum(account.id)) == account.balance_cents
        assert settled[0]["refund_cents"] == 199 - row.charged_cents

        again = subprocess.run([sys.executable, "-m", "b2bua.node.cli", "reconcile", "--config",
                                write_config(tmp_path, crash_url), "--json"],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert json.loads(again.stdout) == []
        assert fired(store.account("demo", NUMBER)).balance_cents == account.balance_cents
    finally:
        store.close()
