"""The PIN guessing limit: the rule on plain numbers, and its rows in the store on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from billing.db import audit, pins
from billing.db import engine as db_engine
from billing.pinguard import PinGuard, PinRule
from tests.conftest import STORE_EPOCH_S, fired

RULE = PinRule(max_failures=4, window_s=600, lockout_s=1800)
T0 = 1_000_000_000


# -- the rule ---------------------------------------------------------------------------

def test_max_failures_within_the_window_lock_from_the_last_of_them():
    """4 failures within 600 s lock for 1800 s counted from the 4th; 3 do not lock."""
    three = [T0, T0 + 1000, T0 + 2000]
    assert not RULE.locked(three, T0 + 3000)
    four = three + [T0 + 3000]
    assert RULE.locked_until_ms(four) == T0 + 3000 + 1_800_000
    assert RULE.locked(four, T0 + 3000)
    assert RULE.locked(four, T0 + 3000 + 1_799_999)
    assert not RULE.locked(four, T0 + 3000 + 1_800_000)


def test_failures_spread_wider_than_the_window_do_not_lock():
    """4 failures, each 200 s apart (first to last 600 s, not within 600 s): no lockout; one more in time does."""
    spread = [T0 + i * 200_000 for i in range(4)]
    assert RULE.locked_until_ms(spread) is None
    assert RULE.locked(spread + [T0 + 650_000], T0 + 650_000)


def test_the_latest_lockout_counts_and_order_does_not_matter():
    """Two runs of failures: the later run's lockout decides, whatever order the times come in."""
    first = [T0 + i for i in range(4)]
    later = [T0 + 5_000_000 + i for i in range(4)]
    assert RULE.locked_until_ms(list(reversed(later + first))) == T0 + 5_000_003 + 1_800_000
    assert RULE.reach_ms() == 2_400_000


# -- the rows in the store ---------------------------------------------------------------------

def attempts(engine, *args, now_ms, **kw):
    with engine.begin() as conn:
        return pins.attempt(conn, RULE, *args, now_ms=now_ms, **kw)


def wrong(engine, tried, now_ms):
    with engine.begin() as conn:
        return pins.wrong(conn, RULE, tried, now_ms=now_ms, actor="node:n1").locked


def audit_rows(engine):
    with engine.connect() as conn:
        return audit.entries(conn, action=pins.LOCKOUT)


def test_fourth_wrong_pin_from_one_source_locks_it_and_writes_one_audit_row(engine):
    """Across calls: 3 wrong PINs from 192.0.2.7 leave it open, the 4th locks it (one audit row), and a
    5th attempt from there is refused before its PIN is looked up; another address is not locked."""
    for i in range(3):
        tried = attempts(engine, "demo", "192.0.2.7", None, f"call-{i}", now_ms=T0 + i * 1000)
        assert tried is not None and wrong(engine, tried, T0 + i * 1000 + 500) is False
    tried = attempts(engine, "demo", "192.0.2.7", None, "call-3", now_ms=T0 + 3000)
    assert wrong(engine, tried, T0 + 3500) is True
    assert attempts(engine, "demo", "192.0.2.7", None, "call-4", now_ms=T0 + 4000) is None
    assert attempts(engine, "demo", "192.0.2.8", None, "call-5", now_ms=T0 + 4000) is not None
    [row] = audit_rows(engine)
    assert (row.at_ms, row.actor, row.source, row.profile, row.subject) == (
        T0 + 3500, "node:n1", "192.0.2.7", "demo", "source 192.0.2.7")
    assert row.before == "unlocked" and row.after.startswith("locked until ") and "call-3" in row.detail
    with engine.connect() as conn:
        # locked for lockout_s from the time the 4th PIN was typed
        assert pins.locked(conn, RULE, "demo", "192.0.2.7", None, now_ms=T0 + 3000 + 1_799_999)
        assert not pins.locked(conn, RULE, "demo", "192.0.2.7", None, now_ms=T0 + 3000 + 1_800_000)


def test_a_right_pin_does_not_clear_the_failures_of_its_source(engine):
    """3 wrong then 1 right from one source: the right one stops counting, the 3 wrong still do; the next
    wrong one locks."""
    for i in range(3):
        wrong(engine, attempts(engine, "demo", "192.0.2.7", None, f"c{i}", now_ms=T0 + i), T0 + i)
    good = attempts(engine, "demo", "192.0.2.7", None, "c3", now_ms=T0 + 10)
    with engine.begin() as conn:
        pins.right(conn, good)
    last = attempts(engine, "demo", "192.0.2.7", None, "c4", now_ms=T0 + 20)
    assert last is not None and wrong(engine, last, T0 + 20) is True


def test_pending_attempts_count_so_parallel_calls_cannot_overshoot(engine):
    """4 attempts from one source under way at once (none looked up yet): a 5th is refused. As they turn out
    wrong each answers locked, but only the 4th wrong one starts the lockout: one audit row."""
    tried = [attempts(engine, "demo", "192.0.2.7", None, f"c{i}", now_ms=T0 + i) for i in range(4)]
    assert None not in tried
    assert attempts(engine, "demo", "192.0.2.7", None, "c4", now_ms=T0 + 5) is None
    verdicts = []
    for attempt in tried:
        with engine.begin() as conn:
            verdicts.append(pins.wrong(conn, RULE, attempt, now_ms=T0 + 10, actor="node:n1"))
    assert verdicts == [pins.WrongPin(True, False)] * 3 + [pins.WrongPin(True, True)]
    assert len(audit_rows(engine)) == 1


def test_an_account_is_locked_whatever_address_the_guesses_come_from(engine):
    """Wrong PINs for account +4915112345678 from four addresses lock that account (audited as the account),
    not the addresses, and not the same number under another profile."""
    for i in range(4):
        tried = attempts(engine, "demo", f"198.51.100.{i}", "+4915112345678", f"c{i}", now_ms=T0 + i)
        locked = wrong(engine, tried, T0 + i)
    assert locked is True
    assert attempts(engine, "demo", "198.51.100.9", "+4915112345678", "c9", now_ms=T0 + 9) is None
    assert attempts(engine, "other", "198.51.100.9", "+4915112345678", "c9", now_ms=T0 + 9) is not None
    assert attempts(engine, "demo", "198.51.100.0", None, "c10", now_ms=T0 + 10) is not None
    assert [r.subject for r in audit_rows(engine)] == ["account +4915112345678"]


def test_attempts_beyond_the_rules_reach_are_forgotten(engine):
    """An attempt older than window + lockout is deleted by the next attempt; newer ones stay."""
    wrong(engine, attempts(engine, "demo", "192.0.2.7", None, "old", now_ms=T0), T0)
    attempts(engine, "demo", "192.0.2.9", None, "new", now_ms=T0 + RULE.reach_ms() + 1)
    with engine.connect() as conn:
        left = conn.execute(sa.select(pins.P.c.call_id)).scalars().all()
    assert left == ["new"]


def test_guard_runs_through_the_store_and_counts_lockouts(store):
    """PinGuard on the Store: the 4th wrong PIN from one source fires True, counts one lockout, and the
    audit row carries the store clock's time."""
    guard = PinGuard(store, lambda: RULE, actor="node:test-node")
    results = []
    for i in range(4):
        tried = fired(guard.attempt("demo", "192.0.2.7", None, f"c{i}"))
        results.append(fired(guard.wrong(tried)))
    assert results == [False, False, False, True] and guard.lockouts == 1
    assert fired(guard.locked("demo", "192.0.2.7", None)) is True
    [row] = fired(store.run(audit.entries, action=pins.LOCKOUT))
    assert row.at_ms == STORE_EPOCH_S * 1000 and row.actor == "node:test-node"


def test_0006_adds_pin_attempts_and_audit_and_downgrades(store_url):
    """0006 on a database at 0005 keeps the accounts, adds pin_attempts and audit; downgrading drops both."""
    engine = db_engine.create_engine(store_url)
    try:
        db_engine.upgrade(engine, "0005")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO accounts (profile, number, balance_cents, created_ms, updated_ms) "
                                 "VALUES ('p', '+491', 5, 1, 2)"))
        db_engine.upgrade(engine, "0006")
        assert {"pin_attempts", "audit"} <= set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT balance_cents FROM accounts")).scalar() == 5
        from alembic import command
        cfg = db_engine.alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
        assert not {"pin_attempts", "audit"} & set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_trusted_carriers_address_has_its_own_higher_limit():
    """Every withheld caller of a carrier arrives from its address: that address gets the carriers' rule, any
    other address (an untrusted source, in ``untrusted = "pin"``) the caller's rule."""
    import ipaddress
    from billing.pinguard import PinGuard, PinRule
    strict, carrier = PinRule(5, 900, 1800), PinRule(50, 900, 1800)
    guard = PinGuard(None, lambda: strict, actor="node:t", carrier_rule=lambda: carrier,
                     carriers=lambda: (ipaddress.ip_network("192.0.2.0/24"),))
    assert guard.rule_for("192.0.2.17") is carrier
    assert guard.rule_for("203.0.113.5") is strict
    assert guard.rule_for("not-an-address") is strict
