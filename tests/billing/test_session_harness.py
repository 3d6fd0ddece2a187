"""An in-memory SessionStore: the test double of billing/db/sessions.py, with the same money rules (no tests here).

It answers synchronously (Deferreds already fired), so that session tests on a
``task.Clock`` see every outcome at once. ``test_session.py`` runs the same
tests on it and on the real store, which pins that both behave alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.defer import succeed

from billing.rating import billed_s, charge_cents, tariff_for
from billing.session import Credits, DebitAhead, DebitOutcome, Opened, OpenRequest, Settlement, SettleRequest


@dataclass
class _Row:
    request: OpenRequest
    tariff: object
    state: str = "open"
    charging_started_ms: int | None = None
    paid_s: int = 0
    lease_until_ms: int = 0
    renewed_ms: int = 0
    settlement: Settlement | None = None
    #: the length of the ledger when the session opened: what it credited later is after this
    ledger_from: int = 0


@dataclass
class MemorySessionStore:
    balances: dict = field(default_factory=dict)
    first_callers: set = field(default_factory=set)
    first_call_ms: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)
    ledger: list = field(default_factory=list)  # (profile, number, kind, amount_cents, ref, session_id)
    callbacks: list = field(default_factory=list)
    #: the ledger's references, and what each session was debited net (so that long runs stay linear)
    refs: set = field(default_factory=set)
    debited: dict = field(default_factory=dict)

    def _book(self, profile, number, kind, cents, ref, session_id):
        self.ledger.append((profile, number, kind, cents, ref, session_id))
        self.refs.add(ref)
        if session_id is not None:
            self.debited[session_id] = self.debited.get(session_id, 0) - cents

    def set_balance(self, profile, number, cents):
        self.balances[(profile, number)] = cents
        self._notify(profile, number)

    def credit(self, profile, number, cents, ref):
        self.balances[(profile, number)] += cents
        self._book(profile, number, "topup", cents, ref, None)
        self._notify(profile, number)

    def _notify(self, profile, number):
        for cb in list(self.callbacks):
            cb(profile, number, self.balances[(profile, number)])

    def on_balance_changed(self, callback):
        self.callbacks.append(callback)

    def open_session(self, request: OpenRequest):
        key = (request.profile.name, request.number)
        balance = self.balances.get(key)
        offer = request.profile.first_caller
        first = offer is not None and offer.offered_at(request.now_ms) and key not in self.first_callers
        tariff = tariff_for(request.profile, request.caller_class, first_call=first)
        from billing.rating import can_start
        if not can_start(tariff, balance or 0):
            return succeed(Opened(request.session_id, tariff, balance or 0, first,
                                  refused="no account" if balance is None else "balance too low"))
        if balance is None:      # free minutes for a caller without an account: one with balance 0
            self.balances[key] = balance = 0
        if first:
            self.first_callers.add(key)
            self.first_call_ms[key] = request.now_ms
        self.rows[request.session_id] = _Row(request, tariff, lease_until_ms=request.lease_until_ms,
                                             renewed_ms=request.now_ms, ledger_from=len(self.ledger))
        return succeed(Opened(request.session_id, tariff, balance, first))

    def debit_ahead(self, request: DebitAhead):
        row = self.rows[request.session_id]
        key = (row.request.profile.name, row.request.number)
        ref = f"{request.session_id}:{request.seq}"
        if ref in self.refs:
            return succeed(DebitOutcome(True, self.balances[key], "repeat"))
        if row.state != "open":
            return succeed(DebitOutcome(False, self.balances[key], "session settled"))
        row.lease_until_ms, row.renewed_ms = request.lease_until_ms, request.now_ms  # any attempt: alive
        if request.charging_started_ms is not None:
            row.charging_started_ms = request.charging_started_ms
        if self.balances[key] < request.amount_cents:
            return succeed(DebitOutcome(False, self.balances[key], "insufficient"))
        if request.amount_cents == 0:        # free minutes: only the paid time moves, no ledger row
            row.paid_s = request.paid_s
            return succeed(DebitOutcome(True, self.balances[key]))
        self.balances[key] -= request.amount_cents
        self._book(*key, "call_debit", -request.amount_cents, ref, request.session_id)
        row.paid_s = request.paid_s
        row.lease_until_ms = request.lease_until_ms
        row.renewed_ms = request.now_ms
        self._notify(*key)
        return succeed(DebitOutcome(True, self.balances[key]))

    def credits_since_open(self, session_id):
        row = self.rows[session_id]
        key = (row.request.profile.name, row.request.number)
        since = [e for e in self.ledger[row.ledger_from:] if e[:2] == key]
        return succeed(Credits(sum(e[3] for e in since if e[2] != "call_refund" and e[3] > 0),
                               sum(e[3] for e in since if e[2] == "call_refund" and e[5] != session_id)))

    def renew_leases(self, session_ids, now_ms, lease_until_ms):
        for sid in session_ids:
            row = self.rows[sid]
            if row.state == "open":
                row.lease_until_ms, row.renewed_ms = lease_until_ms, now_ms
        return succeed(None)

    def expired_sessions(self, now_ms, limit):
        from billing.reconcile import ExpiredSession
        out = [ExpiredSession(sid, row.request.node_id, row.renewed_ms) for sid, row in self.rows.items()
               if row.state == "open" and row.lease_until_ms < now_ms]
        return succeed(out[:limit])

    def settle(self, request: SettleRequest):
        row = self.rows[request.session_id]
        if row.settlement is not None:
            return succeed(row.settlement)
        key = (row.request.profile.name, row.request.number)
        debited = self.debited.get(request.session_id, 0)
        if row.charging_started_ms is None:
            billed = 0
        else:
            duration_s = max(request.min_billed_s, -(-(request.end_ms - row.charging_started_ms) // 1000))
            billed = min(billed_s(row.tariff.increment, duration_s), row.paid_s)
        charge = charge_cents(row.tariff, billed)
        refund = debited - charge
        if refund:
            self.balances[key] += refund
            self._book(*key, "call_refund", refund, f"{request.session_id}:refund", request.session_id)
        row.state = "settled"
        if (row.tariff.first_caller is not None and row.charging_started_ms is None
                and self.first_call_ms.get(key) == row.request.now_ms):
            self.first_callers.discard(key)   # the offer was never used: the caller keeps it
        row.settlement = Settlement(request.session_id, row.request.call_id, key[0], key[1], charge, refund,
                                    billed, request.reason, request.settled_ms, self.balances[key])
        if refund:
            self._notify(*key)
        return succeed(row.settlement)


# -- harnesses: one per SessionStore, each with a Clock -------------------------------------------

class MemoryHarness:
    """The in-memory double on a Clock."""

    def __init__(self, request):
        from twisted.internet.task import Clock
        self.clock = Clock()
        self.store = MemorySessionStore()

    def give(self, profile, number, cents):
        self.store.balances[(profile.name, number)] = 0
        self.store.credit(profile.name, number, cents, f"seed-{profile.name}-{number}")

    def topup(self, profile, number, cents, ref):
        self.store.credit(profile.name, number, cents, ref)

    def balance(self, profile, number):
        return self.store.balances[(profile.name, number)]

    def topup_elsewhere(self, profile, number, cents, ref):
        """A top-up this node is not told of (another node, an operator's command)."""
        self.store.balances[(profile.name, number)] += cents
        self.store._book(profile.name, number, "topup", cents, ref, None)

    def ledger_total(self, profile, number):
        return sum(e[3] for e in self.store.ledger if e[:2] == (profile.name, number))

    def session_state(self, session_id):
        row = self.store.rows[session_id]
        return (row.state, row.settlement.charge_cents if row.settlement else None,
                row.settlement.reason if row.settlement else None)

    def flush(self):
        pass

    def close(self):
        pass


class SqlHarness:
    """The real store (SQL inline, so Deferreds fire at once) with SqlSessionStore, on a Clock from 0."""

    def __init__(self, request, url):
        from twisted.internet.task import Clock

        from billing.db.sessions import SqlSessionStore
        from billing.store import Store
        self.clock = Clock()
        self.url = url
        self.db = Store.open(url, self.clock, node_id="test-node", inline=True)
        self.db.upgrade()
        self.store = SqlSessionStore(self.db, lease_s=60)
        self._refs = 0

    def give(self, profile, number, cents):
        self.topup(profile, number, cents, f"seed-{profile.name}-{number}")

    def topup(self, profile, number, cents, ref):
        from tests.conftest import fired
        result = fired(self.db.credit(profile.name, number, cents, kind="manual", source="test",
                                      external_ref=ref, actor="test"))
        assert result.applied

    def topup_elsewhere(self, profile, number, cents, ref):
        """A top-up through another Store object (another node, an operator's command): not announced here."""
        from billing.store import Store
        from tests.conftest import fired
        other = Store.open(self.url, self.clock, node_id="elsewhere", inline=True)
        try:
            assert fired(other.credit(profile.name, number, cents, kind="manual", source="test",
                                      external_ref=ref, actor="elsewhere")).applied
        finally:
            other.close()

    def refund_rows(self, profile, number):
        """The external references of the account's call_refund rows."""
        from tests.conftest import fired
        rows = fired(self.db.transactions(profile=profile.name, number=number, kinds=("call_refund",)))
        return [r.external_ref for r in rows]

    def _account(self, profile, number):
        from tests.conftest import fired
        return fired(self.db.account(profile.name, number))

    def balance(self, profile, number):
        return self._account(profile, number).balance_cents

    def ledger_total(self, profile, number):
        from tests.conftest import fired
        return fired(self.db.ledger_sum(self._account(profile, number).id))

    def session_state(self, session_id):
        import sqlalchemy as sa

        from billing.db.model import call_sessions as cs
        from tests.conftest import fired

        def thd(conn):
            row = conn.execute(sa.select(cs.c.state, cs.c.charged_cents, cs.c.end_reason)
                               .where(cs.c.id == session_id)).one()
            return (row.state, row.charged_cents, row.end_reason)
        return fired(self.db.run(thd))

    def flush(self):
        pass

    def close(self):
        self.db.close()


def sqlite_harness(request):
    return SqlHarness(request, f"sqlite:///{request.getfixturevalue('tmp_path')}/sessions.db")


def postgres_harness(request):
    return SqlHarness(request, request.getfixturevalue("pg_schema_url_factory")())


HARNESSES = {"memory": MemoryHarness, "sqlite": sqlite_harness, "postgresql": postgres_harness}
