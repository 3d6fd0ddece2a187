"""CPU per call of the store's per-call work, on SQLite and PostgreSQL, beside bare DB-API statements.

One call, as the B2BUA's billing makes it: :meth:`CallBilling.open` (the
balance, the tariff, the session row), :meth:`CallSession.start_charging`
(charging starts and the first increment is debited ahead), :meth:`CallSession.settle`
of a one-second call (the charge, the refund of the rest) and
:meth:`Store.add_call_record`, through the real :class:`billing.store.Store`
on its thread pool, answered on the real reactor, each call on an account of
its own among ``--accounts`` topped-up callers, as real traffic is. Two ways:

* flat out: ``--concurrency`` calls in flight, the next as soon as one ends
  (the call's second is only its end time);
* paced: ``--rate`` calls started per second, each held for a real second
  before it settles, as ``bench/cps.py`` drives a node (100 calls/s, ~100 in
  flight; the store's thread wakes for every transaction).

The figure is the process's CPU time (every thread: reactor and store pool)
over ``--calls`` (``--paced-calls``) calls, after ``--warmup`` calls that are
not counted.

The reference, measured in the same run on the same kind of database (a fresh
file or schema migrated the same way): the minimum a call needs, as bare DB-API
statements (``sqlite3`` / ``psycopg``) in a plain loop: select the balance and
insert the session; update the balance and insert the ledger row; update the
session and insert the record (three transactions). The ratio says what the
store adds to that floor.

    .venv/bin/python bench/store_calls.py [--calls 2000] [--concurrency 20] [--paced-calls 1000] [--rate 100]
                                          [--backends sqlite,postgresql]

PostgreSQL: ``$PREPAID_TEST_DATABASE_URL`` (default the local ``test`` database),
in a schema of its own, dropped afterwards; skipped with a message when it does
not answer. Writes ``bench/results/store_calls.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy.engine import make_url  # noqa: E402

import storekit  # noqa: E402  (bench/ is on sys.path when a bench runs as a script)
from billing.db import engine as db_engine  # noqa: E402
from billing.db.sessions import SqlSessionStore  # noqa: E402
from billing.profile import BillingProfile, CallerClass, Increment  # noqa: E402
from billing.session import CallBilling, NoObserver  # noqa: E402
from billing.store import CallRecord, Store  # noqa: E402
from storekit import number  # noqa: E402

START_CENTS = 100_000_000
PROFILE = BillingProfile("bench", Decimal("1.99"), Decimal("2.49"), increment=Increment(60, 60))
#: the length of every call, charged from start_charging to settle
CALL_MS = 1000


def check_money(url: str) -> dict:
    """Whether every balance equals its ledger, and every settled session's charge what its ledger rows say."""
    found = storekit.scalars(
        url, unbalanced=storekit.UNBALANCED_ACCOUNTS,
        off=("SELECT count(*) FROM call_sessions s WHERE s.state = 'settled' AND s.charged_cents <> "
             "-(SELECT coalesce(sum(amount_cents), 0) FROM ledger l WHERE l.call_session_id = s.id)"),
        open="SELECT count(*) FROM call_sessions WHERE state = 'open'",
        records="SELECT count(*) FROM call_records")
    return {"balance_equals_ledger": found["unbalanced"] == 0, "charges_match_ledger": found["off"] == 0,
            "sessions_left_open": found["open"], "call_records": found["records"]}


class NoStore:
    """The floor: the same calls with the in-memory session store of the tests and records dropped."""

    def __init__(self, accounts: int) -> None:
        from tests.billing.test_session_harness import MemorySessionStore
        self.sessions = MemorySessionStore()
        for i in range(accounts):
            self.sessions.balances[(PROFILE.name, number(i))] = START_CENTS

    def add_call_record(self, record):
        from twisted.internet.defer import succeed
        return succeed(record)

    def close(self) -> None:
        pass


def store_calls(reactor, url: str | None, calls: int, warmup: int, accounts: int, *, concurrency: int = 0,
                rate: float = 0.0):
    """Fires with the CPU and wall time of ``calls`` calls through the Store at ``url`` (None: through
    :class:`NoStore`), after ``warmup`` calls.

    Flat out (``concurrency`` calls in flight, the next as soon as one ends; the call's second is only
    its end time), or paced (``rate`` calls started per second, each held for a real ``CALL_MS``).
    """
    from twisted.internet import defer, task

    if url is None:
        store = NoStore(accounts)
        sessions = store.sessions
    else:
        store = Store.open(url, reactor, node_id="bench")
        sessions = SqlSessionStore(store, lease_s=60)
    billing = CallBilling(sessions, reactor, node_id="bench", lease_s=60)
    quiet = NoObserver()
    counter = {"next": 0, "charged": 0}
    hold_s = CALL_MS / 1000 if rate else 0
    records: list = []  # the B2BUA does not wait for its record; the run does, at its end

    @defer.inlineCallbacks
    def one_call(i: int):
        caller = number(i % accounts)
        call_id = f"bench-{uuid.uuid4().hex}"
        session = yield billing.open(PROFILE, caller, CallerClass.LANDLINE, call_id, quiet)
        start_ms = round(reactor.seconds() * 1000)
        session.start_charging(start_ms)
        if hold_s:
            yield task.deferLater(reactor, hold_s, lambda: None)
        settlement = yield session.settle(start_ms + CALL_MS, "hangup")
        counter["charged"] += settlement.charge_cents
        records.append(store.add_call_record(CallRecord(
            call_id=call_id, profile=PROFILE.name, service_number="+493012345678", caller=caller,
            identity_source="from", privacy=False, caller_class="landline", agent_tried="sip:agent@127.0.0.1",
            agent_answered="sip:agent@127.0.0.1", invite_ms=start_ms - 500, answer_ms=start_ms,
            end_ms=start_ms + CALL_MS, end_reason="hangup", a_status=200, b_status=200,
            billed_s=settlement.billed_s, charge_cents=settlement.charge_cents,
            call_session_id=session.session_id)))

    @defer.inlineCallbacks
    def worker(total: int):
        while counter["next"] < total:
            i = counter["next"]
            counter["next"] += 1
            yield one_call(i)

    @defer.inlineCallbacks
    def paced(total: int):
        t0, started = reactor.seconds(), []
        for k, i in enumerate(range(counter["next"], total)):
            started.append(one_call(i))
            yield task.deferLater(reactor, max(0.0, t0 + (k + 1) / rate - reactor.seconds()), lambda: None)
        counter["next"] = total
        yield defer.gatherResults(started, consumeErrors=True)

    @defer.inlineCallbacks
    def run(total: int):
        if rate:
            yield paced(total)
        else:
            yield defer.gatherResults([worker(total) for _ in range(concurrency)], consumeErrors=True)
        yield defer.gatherResults(records, consumeErrors=True)
        del records[:]

    @defer.inlineCallbacks
    def main():
        yield run(warmup)
        t0, cpu0 = time.monotonic(), time.process_time()
        yield run(warmup + calls)
        elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
        billing.stop()
        store.close()
        mode = {"calls_per_s_paced": rate, "call_s": hold_s} if rate else {"in_flight": concurrency}
        return {"calls": calls, **mode, "seconds": round(elapsed, 3), "calls_per_s": round(calls / elapsed, 1),
                "cpu_ms_per_call": round(cpu * 1000 / calls, 3), "charged_cents": counter["charged"]}
    return main()


# -- the bare reference --------------------------------------------------------------------------------

_BARE = {
    "open_balance": "SELECT id, balance_cents FROM accounts WHERE profile = {p} AND number = {p}",
    "open_session": ("INSERT INTO call_sessions (id, account_id, profile, call_id, node_id, state, caller_class, "
                     "per_minute, first_s, next_s, connect_charge_cents, reserved_cents, charged_cents, paid_s, "
                     "debit_seq, billed_s, opened_ms, lease_until_ms) VALUES ({p}, {p}, {p}, {p}, 'bench', "
                     "'open', 'landline', '1.99', 60, 60, 0, 0, 0, 0, 0, 0, {p}, {p})"),
    "debit": ("UPDATE accounts SET balance_cents = balance_cents - {p}, updated_ms = {p} "
              "WHERE id = {p} AND balance_cents >= {p}"),
    "ledger": ("INSERT INTO ledger (account_id, kind, amount_cents, balance_after_cents, source, external_ref, "
               "actor, note, call_session_id, at_ms) VALUES ({p}, 'call_debit', {p}, 0, 'call', {p}, 'bench', "
               "'', {p}, {p})"),
    "settle": "UPDATE call_sessions SET state = 'settled', charged_cents = {p}, billed_s = 60 WHERE id = {p}",
    "record": ("INSERT INTO call_records (call_id, profile, service_number, caller, identity_source, privacy, "
               "invite_ms, billed_s, charge_cents, call_session_id) VALUES ({p}, 'bench', '+493012345678', {p}, "
               "'from', false, {p}, 60, 199, {p})"),
}


def bare_calls(url: str, calls: int, accounts: int) -> dict:
    """The minimum per call as bare DB-API statements, three transactions, in a plain loop on one connection."""
    if db_engine.is_sqlite(url):
        import sqlite3
        conn = sqlite3.connect(make_url(url).database, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        begin, p = "BEGIN IMMEDIATE", "?"
    else:
        import psycopg
        from billing.db.notify import libpq_url
        conn = psycopg.connect(libpq_url(url), autocommit=True)
        begin, p = "BEGIN", "%s"
    sql = {k: v.format(p=p) for k, v in _BARE.items()}
    cur = conn.cursor()
    t0, cpu0 = time.monotonic(), time.process_time()
    for i in range(calls):
        sid, caller, now = str(uuid.uuid4()), number(i % accounts), i
        cur.execute(begin)
        cur.execute(sql["open_balance"], ("bench", caller))
        account_id, _ = cur.fetchone()
        cur.execute(sql["open_session"], (sid, account_id, "bench", sid, now, now + 60_000))
        cur.execute("COMMIT")
        cur.execute(begin)
        cur.execute(sql["debit"], (199, now, account_id, 199))
        cur.execute(sql["ledger"], (account_id, -199, f"{sid}:1", sid, now))
        cur.execute("COMMIT")
        cur.execute(begin)
        cur.execute(sql["settle"], (199, sid))
        cur.execute(sql["record"], (sid, caller, now, sid))
        cur.execute("COMMIT")
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    conn.close()
    return {"calls": calls, "seconds": round(elapsed, 3), "cpu_ms_per_call": round(cpu * 1000 / calls, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="measured calls per backend, flat out")
    parser.add_argument("--concurrency", type=int, default=20, help="calls in flight at once, flat out")
    parser.add_argument("--paced-calls", type=int, default=1000, help="measured calls per backend, paced (0: none)")
    parser.add_argument("--rate", type=float, default=100.0, help="calls started per second, paced")
    parser.add_argument("--warmup", type=int, default=200, help="calls before each measurement")
    parser.add_argument("--accounts", type=int, default=1000, help="callers, called in turn")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    backends = args.backends.split(",")

    from twisted.internet import defer, reactor

    results: dict = {"backends": {}, "skipped": {}}
    tmp = tempfile.mkdtemp(prefix="prepaid-bench-")
    pg_base = storekit.pg_base_url()
    schemas = storekit.PgSchemas(pg_base)
    if "postgresql" in backends:
        reason = storekit.pg_unreachable(pg_base)
        if reason is not None:
            print(f"postgresql: SKIPPED, {pg_base} does not answer: {reason}", flush=True)
            results["skipped"]["postgresql"] = reason
            backends.remove("postgresql")

    def fresh_url(backend: str, name: str) -> str:
        url = f"sqlite:///{tmp}/{name}.db" if backend == "sqlite" else schemas.url()
        storekit.seed(url, args.accounts, START_CENTS, profile=PROFILE.name)
        return url

    def both(url):
        """The flat and the paced figures of the calls through ``url`` (None: the floor, no store)."""
        out = {}
        out["flat"] = yield store_calls(reactor, url, args.calls, args.warmup, args.accounts,
                                        concurrency=args.concurrency)
        if args.paced_calls:
            out["paced"] = yield store_calls(reactor, url, args.paced_calls, args.warmup, args.accounts,
                                             rate=args.rate)
        return out

    @defer.inlineCallbacks
    def run_all():
        floor = results["floor_no_store"] = yield defer.inlineCallbacks(both)(None)
        for backend in backends:
            url = fresh_url(backend, "store")
            out = yield defer.inlineCallbacks(both)(url)
            out["store_ms_per_call"] = {mode: round(out[mode]["cpu_ms_per_call"] - floor[mode]["cpu_ms_per_call"], 3)
                                        for mode in floor}
            out["money"] = check_money(url)
            bare = out["reference_bare_dbapi"] = bare_calls(fresh_url(backend, "bare"), args.calls, args.accounts)
            ratio = out["ratio_to_reference"] = round(out["store_ms_per_call"]["flat"] / bare["cpu_ms_per_call"], 2)
            results["backends"][backend] = out
            for mode in floor:
                how = (f"{args.concurrency} in flight" if mode == "flat"
                       else f"{args.rate:g} calls/s of {CALL_MS} ms")
                print(f"{backend:10s} {mode:5s} ({how}): {out[mode]['cpu_ms_per_call']:.3f} ms CPU per call, "
                      f"{floor[mode]['cpu_ms_per_call']:.3f} without a store: the store's part "
                      f"{out['store_ms_per_call'][mode]:.3f} ms", flush=True)
            print(f"{backend:10s} bare DB-API: {bare['cpu_ms_per_call']:.3f} ms per call; the store's part (flat) is "
                  f"{ratio:.2f} x that; money {out['money']}", flush=True)

    try:
        storekit.run_on_reactor(run_all)
    finally:
        schemas.drop()
    print(f"wrote {storekit.write_results('store_calls', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
