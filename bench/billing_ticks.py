"""The CPU cost of ticking concurrent calls: call billing sessions on a SQLite store.

1000 calls (by default) charge at once, each its own caller with ample credit,
half at 60/60 and half at 1/1. Time runs ``--speed`` times faster than real
time (a scaled view of the real reactor, so the store's thread pool answers as
it would in service). The process CPU time (all threads) over the run, divided
by the simulated call-minutes, gives CPU seconds per call-minute; times 1000
calls in real time, the share of one core. The same run on the in-memory
double of the store is the reference (the session logic alone), and the ratio
says what the store adds.

    .venv/bin/python bench/billing_ticks.py [--calls 1000] [--minutes 2] [--speed 10]

Writes ``bench/results/billing_ticks.json``. The aim: under 10 % of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, task  # noqa: E402
from twisted.python.failure import Failure  # noqa: E402

from billing.profile import BillingProfile, CallerClass, Increment  # noqa: E402
from billing.session import CallBilling  # noqa: E402

PROFILES = (BillingProfile("m60", Decimal("1.99"), Decimal("2.49"), increment=Increment(60, 60)),
            BillingProfile("s1", Decimal("1.99"), Decimal("2.49"), increment=Increment(1, 1)))
BALANCE_CENTS = 1_000_000


class ScaledTime:
    """The real reactor's clock, running ``factor`` times faster (IReactorTime)."""

    def __init__(self, reactor, factor: float) -> None:
        self._reactor = reactor
        self._factor = factor
        self._t0 = reactor.seconds()

    def seconds(self) -> float:
        return self._t0 + (self._reactor.seconds() - self._t0) * self._factor

    def callLater(self, delay, f, *args, **kw):
        return self._reactor.callLater(delay / self._factor, f, *args, **kw)

    def getDelayedCalls(self):
        return self._reactor.getDelayedCalls()


class Quiet:
    def session_warning(self, event):
        pass

    def session_exhausted(self, event):
        pass


def number(i: int) -> str:
    return f"+4930{i:08d}"


@defer.inlineCallbacks
def run_ticks(reactor, make_store, *, calls: int, minutes: float, speed: float):
    """Open ``calls`` sessions on the store ``make_store`` gives, charge them for ``minutes`` of simulated
    time, and measure the CPU time of the charging part (process time: every thread)."""
    store, seed, close = yield make_store(reactor)
    for i in range(calls):
        yield seed(PROFILES[i % 2], number(i), BALANCE_CENTS)
    clock = ScaledTime(reactor, speed)
    failures: list = []
    billing = CallBilling(store, clock, node_id="bench", lease_s=60, log_failure=failures.append)
    sessions = []
    for i in range(calls):
        s = yield billing.open(PROFILES[i % 2], number(i), CallerClass.LANDLINE, f"call-{i}", Quiet())
        sessions.append(s)
    cpu0, wall0, debits0 = time.process_time(), time.monotonic(), billing.debits
    for s in sessions:
        s.start_charging()
    yield task.deferLater(reactor, minutes * 60 / speed, lambda: None)
    # the debits of the simulated period that the store has not answered yet are part of its cost
    lag_s = time.monotonic()
    while any(s._inflight is not None for s in sessions) and time.monotonic() - lag_s < 60:
        yield task.deferLater(reactor, 0.01, lambda: None)
    lag_s = time.monotonic() - lag_s
    cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
    debits = billing.debits - debits0
    billing.stop()
    charged = 0
    for s in sessions:
        settlement = yield s.settle(None, "bench over")
        charged += settlement.charge_cents
    yield close()
    call_minutes = calls * minutes
    per_call_minute = cpu_s / call_minutes
    return dict(calls=calls, simulated_minutes=minutes, speed=speed, wall_s=round(wall_s, 3), drain_s=round(lag_s, 3),
                cpu_s=round(cpu_s, 4), debits=debits, failures=len(failures), charged_cents=charged,
                cpu_s_per_call_minute=per_call_minute,
                core_percent_1000_realtime=round(per_call_minute * 1000 / 60 * 100, 3))


def memory_store(reactor):
    """The in-memory double of the store (tests/billing): the session logic alone."""
    from tests.billing.test_session_harness import MemorySessionStore
    store = MemorySessionStore()

    def seed(profile, num, cents):
        store.balances[(profile.name, num)] = 0
        store.credit(profile.name, num, cents, f"seed-{num}")
        return defer.succeed(None)
    return defer.succeed((store, seed, lambda: defer.succeed(None)))


def sqlite_store(folder):
    """The real store on a SQLite file, its SQL on the store's thread pool."""
    @defer.inlineCallbacks
    def make(reactor):
        from billing.db.sessions import SqlSessionStore
        from billing.store import Store
        db = Store.open(f"sqlite:///{folder}/ticks.db", reactor, node_id="bench")
        yield db.upgrade()

        def seed(profile, num, cents):
            return db.credit(profile.name, num, cents, kind="manual", source="bench", external_ref=f"seed-{num}",
                             actor="bench")

        def close():
            db.close()
            return defer.succeed(None)
        return (SqlSessionStore(db, lease_s=60), seed, close)
    return make


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=2.0, help="simulated minutes of charging")
    parser.add_argument("--speed", type=float, default=10.0, help="simulated seconds per real second")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                      "billing_ticks.json"))
    args = parser.parse_args(argv)
    from twisted.internet import reactor

    results: dict = {}

    @defer.inlineCallbacks
    def both():
        with tempfile.TemporaryDirectory() as folder:
            for name, make in (("memory", memory_store), ("sqlite", sqlite_store(folder))):
                results[name] = yield run_ticks(reactor, make, calls=args.calls, minutes=args.minutes,
                                                speed=args.speed)

    def stop(outcome):
        if isinstance(outcome, Failure):
            results["error"] = outcome.getTraceback()
        reactor.stop()

    reactor.callWhenRunning(lambda: both().addBoth(stop))
    reactor.run()
    if "error" in results:
        print(results["error"], file=sys.stderr)
        return 1
    mem, sql = results["memory"], results["sqlite"]
    results["ratio_sqlite_to_memory"] = round(sql["cpu_s_per_call_minute"] / mem["cpu_s_per_call_minute"], 2)
    results["aim_core_percent"] = 10.0
    for name in ("memory", "sqlite"):
        r = results[name]
        print(f"{name:>7}: {r['calls']} calls x {r['simulated_minutes']} min at x{r['speed']:g}: "
              f"{r['debits']} debits, {r['cpu_s']:.3f} CPU s, {r['cpu_s_per_call_minute'] * 1000:.3f} CPU ms per "
              f"call-minute -> {r['core_percent_1000_realtime']:.2f} % of one core for 1000 real-time calls"
              f" (failures: {r['failures']})")
    print(f"ratio sqlite/memory (reference): {results['ratio_sqlite_to_memory']}x; aim: under 10 % of one core")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
