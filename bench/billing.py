"""Debits per second through the store, on SQLite and PostgreSQL, with 1, 10 and 100 concurrent debitors.

Each debitor takes 1 cent at a time from its own account (and, last, all
of them from one account: several calls of one caller) through
``Store.debit`` (the conditional UPDATE and its ledger row in one transaction,
on the store's thread pool, answered on the real reactor), the next as soon as
the last is answered, for ``--seconds`` (default 2) or ``--max-debits`` per
run, whichever comes first. The reference, measured in the same run on the
same database: one bare conditional ``UPDATE ... WHERE balance_cents >= 1``
per transaction in a plain loop (the floor a debit cannot beat); the ratio
says what the ledger row, the thread pool and the reactor add.

    .venv/bin/python bench/billing.py [--seconds 2] [--backends sqlite,postgresql] [--debitors 1,10,100]

PostgreSQL: ``$PREPAID_TEST_DATABASE_URL`` (default the local ``test`` database),
in a schema of its own, dropped afterwards. Writes ``bench/results/billing.json``.
The CPU cost of ticking 1000 concurrent calls is the other half: ``bench/billing_ticks.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy as sa  # noqa: E402

import storekit  # noqa: E402  (bench/ is on sys.path when a bench runs as a script)
from billing.db import engine as db_engine  # noqa: E402
from billing.store import Store  # noqa: E402
from storekit import number  # noqa: E402

START_CENTS = 10_000_000


def reference_rate(url: str, seconds: float, max_ops: int) -> dict:
    """Bare conditional UPDATEs, one per transaction, in a plain loop on one connection."""
    engine = db_engine.create_engine(url)
    A = sa.table("accounts", sa.column("number"), sa.column("balance_cents"))
    stmt = (sa.update(A).where(A.c.number == number(0), A.c.balance_cents >= 1)
            .values(balance_cents=A.c.balance_cents - 1))
    n, t0 = 0, time.monotonic()
    while n < max_ops and time.monotonic() - t0 < seconds:
        with engine.begin() as conn:
            conn.execute(stmt)
        n += 1
    elapsed = time.monotonic() - t0
    # give the account back what the reference took, so the ledger invariant still holds for the store runs
    with engine.begin() as conn:
        conn.execute(sa.update(A).where(A.c.number == number(0)).values(balance_cents=A.c.balance_cents + n))
    engine.dispose()
    return {"ops": n, "seconds": round(elapsed, 3), "per_s": round(n / elapsed, 1)}


def store_rate(reactor, url: str, debitors: int, seconds: float, max_ops: int, *, shared: bool = False):
    """Fires with the debits per second of ``debitors`` loops through one Store (``shared``: all on one account)."""
    from twisted.internet import defer

    store = Store.open(url, reactor, node_id="bench")
    done = {"n": 0, "refused": 0}
    deadline = time.monotonic() + seconds

    @defer.inlineCallbacks
    def debitor(k: int):
        i = 0
        while time.monotonic() < deadline and done["n"] < max_ops:
            r = yield store.debit("bench", number(0 if shared else k), 1, kind="call_debit", source="bench",
                                  external_ref=f"{uuid.uuid4().hex}", actor="bench")
            done["n" if r.applied else "refused"] += 1
            i += 1

    @defer.inlineCallbacks
    def main():
        t0 = time.monotonic()
        cpu0 = time.process_time()
        yield defer.gatherResults([debitor(k) for k in range(debitors)], consumeErrors=True)
        elapsed = time.monotonic() - t0
        cpu = time.process_time() - cpu0
        store.close()
        return {"debitors": debitors, "one_account": shared, "debits": done["n"], "refused": done["refused"], "seconds": round(elapsed, 3),
                "per_s": round(done["n"] / elapsed, 1), "cpu_ms_per_debit": round(cpu * 1000 / max(1, done["n"]), 3)}
    return main()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--max-debits", type=int, default=20_000, help="per measurement")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--debitors", default="1,10,100")
    args = parser.parse_args()
    counts = [int(c) for c in args.debitors.split(",")]
    backends = args.backends.split(",")

    from twisted.internet import defer, reactor

    results: dict = {"seconds": args.seconds, "backends": {}}
    tmp = tempfile.mkdtemp(prefix="prepaid-bench-")
    schemas = storekit.PgSchemas(storekit.pg_base_url())

    @defer.inlineCallbacks
    def run_all():
        for backend in backends:
            url = f"sqlite:///{tmp}/bench.db" if backend == "sqlite" else schemas.url()
            storekit.seed(url, max(counts), START_CENTS)
            ref = reference_rate(url, args.seconds, args.max_debits)
            runs = []
            for n in counts:
                r = yield store_rate(reactor, url, n, args.seconds, args.max_debits)
                r["ratio_to_reference"] = round(r["per_s"] / ref["per_s"], 3)
                runs.append(r)
                print(f"{backend:10s} {n:4d} debitors: {r['per_s']:8.1f} debits/s "
                      f"({r['cpu_ms_per_debit']:.3f} ms CPU each; {r['ratio_to_reference']:.2f} x the bare "
                      f"UPDATE at {ref['per_s']:.1f}/s)", flush=True)
            shared_n = max(counts)
            r = yield store_rate(reactor, url, shared_n, args.seconds, args.max_debits, shared=True)
            r["ratio_to_reference"] = round(r["per_s"] / ref["per_s"], 3)
            runs.append(r)
            print(f"{backend:10s} {shared_n:4d} debitors on ONE account: {r['per_s']:8.1f} debits/s "
                  f"({r['ratio_to_reference']:.2f} x the bare UPDATE)", flush=True)
            results["backends"][backend] = {"reference_bare_update": ref, "runs": runs,
                                            "balance_equals_ledger": storekit.unbalanced_accounts(url) == 0}

    try:
        storekit.run_on_reactor(run_all)
    finally:
        schemas.drop()
    print(f"wrote {storekit.write_results('billing', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
