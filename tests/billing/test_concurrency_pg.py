"""50 debitors on one account from two processes on PostgreSQL: the balance never goes below zero and
equals the sum of the ledger afterwards, and every applied debit is in the ledger exactly once.

Run as a module, this file is one of the two processes:
``python -m tests.billing.test_concurrency_pg URL TAG DEBITORS``; it prints a JSON summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

NUM = "+4915112345678"
START_CENTS = 8_000
DEBITORS_PER_PROCESS = 25
#: each debitor's bound: it stops at its first refusal or after this many debits
MAX_DEBITS = 120


def _debitor(engine, tag: str, k: int) -> tuple[int, int, int]:
    from billing.db import ledger
    amount = 1 + k % 9
    applied = refused = 0
    for i in range(MAX_DEBITS):
        r = ledger.debit(engine, "demo", NUM, amount, kind="call_debit", source="call",
                         external_ref=f"{tag}:{k}:{i}", actor=tag, note="", now_ms=i)
        if not r.applied:
            assert r.reason == "insufficient", r.reason
            refused += 1
            break
        assert r.account.balance_cents >= 0
        applied += 1
    return applied, applied * amount, refused


def _process_main(url: str, tag: str, debitors: int) -> None:
    from billing.db.engine import create_engine
    engine = create_engine(url, pool_size=10)
    with ThreadPoolExecutor(max_workers=debitors) as ex:
        outcomes = list(ex.map(lambda k: _debitor(engine, tag, k), range(debitors)))
    engine.dispose()
    print(json.dumps({"applied": sum(o[0] for o in outcomes), "cents": sum(o[1] for o in outcomes),
                      "refused": sum(o[2] for o in outcomes)}))


def test_fifty_debitors_in_two_processes_never_overdraw(pg_schema_url_factory):
    """Two processes of 25 debit loops each drain one account on PostgreSQL: never below zero,
    balance == ledger sum."""
    _two_processes_drain(pg_schema_url_factory())


def test_two_processes_on_one_sqlite_file_never_overdraw(tmp_path):
    """The same on one SQLite file (a server and an operator's command share it): writers queue on the
    lock (BEGIN IMMEDIATE, busy timeout) and nothing is lost, doubled or overdrawn."""
    _two_processes_drain(f"sqlite:///{tmp_path}/shared.db")


def _two_processes_drain(url: str) -> None:
    from billing.db import engine as db_engine
    from billing.db import ledger
    engine = db_engine.create_engine(url)
    db_engine.upgrade(engine)
    ledger.credit(engine, "demo", NUM, (ledger.Line("manual", START_CENTS, "start"),), source="m",
                  actor="t", note="", now_ms=0)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    procs = [subprocess.Popen([sys.executable, "-m", "tests.billing.test_concurrency_pg", url, tag,
                               str(DEBITORS_PER_PROCESS)], cwd=root, stdout=subprocess.PIPE, text=True)
             for tag in ("p1", "p2")]
    summaries = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    try:
        with engine.connect() as conn:
            balance = conn.execute(sa.text("SELECT balance_cents FROM accounts")).scalar_one()
            total, lowest, rows = conn.execute(sa.text(
                "SELECT sum(amount_cents), min(balance_after_cents), count(*) FROM ledger")).one()
        debited = sum(s["cents"] for s in summaries)
        assert balance >= 0 and lowest >= 0
        assert balance == total == START_CENTS - debited
        assert rows == 1 + sum(s["applied"] for s in summaries)
        assert sum(s["refused"] for s in summaries) > 0, "the account was never drained: the limit was not tested"
        assert all(s["applied"] > 0 for s in summaries), "both processes must have debited"
    finally:
        engine.dispose()


if __name__ == "__main__":
    _process_main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
