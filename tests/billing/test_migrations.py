"""The Alembic migrations produce exactly the tables of billing/db/model.py, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from billing.db import engine as db_engine
from billing.db.model import metadata


def _downgrade(engine, revision: str) -> None:
    """Downgrade the database of ``engine`` to ``revision``."""
    from alembic import command
    cfg = db_engine.alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_upgrade_from_empty_matches_model(store_url):
    """Upgrading an empty database to head leaves no difference from model.metadata."""
    engine = db_engine.create_engine(store_url)
    try:
        assert db_engine.current_revision(engine) is None
        db_engine.upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert diff == []
        head = ScriptDirectory.from_config(db_engine.alembic_config()).get_current_head()
        assert db_engine.current_revision(engine) == head
        assert set(sa.inspect(engine).get_table_names()) >= set(metadata.tables)
    finally:
        engine.dispose()


def test_upgrade_twice_is_harmless(store_url):
    """A second upgrade on a database at head changes nothing and does not fail."""
    engine = db_engine.create_engine(store_url)
    try:
        db_engine.upgrade(engine)
        db_engine.upgrade(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_balance_check_constraint_holds_in_the_database(store_url):
    """The database itself refuses a negative balance (CHECK balance_cents >= 0), whatever the code does."""
    engine = db_engine.create_engine(store_url)
    try:
        db_engine.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO accounts (profile, number, balance_cents, created_ms, updated_ms) "
                                 "VALUES ('p', '+491', 5, 0, 0)"))
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE accounts SET balance_cents = -1"))
        except sa.exc.IntegrityError:
            pass
        else:
            raise AssertionError("a negative balance was accepted")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT balance_cents FROM accounts")).scalar() == 5
    finally:
        engine.dispose()


def test_one_head_and_a_straight_line():
    """The migrations form one line (no branches): each revision has one parent, one head at the end."""
    script = ScriptDirectory.from_config(db_engine.alembic_config())
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert revisions[-1].down_revision is None
    assert all(isinstance(r.down_revision, (str, type(None))) for r in revisions)


def test_0003_adds_updated_index_keeping_rows_and_downgrades(store_url):
    """0003 on a database with accounts at 0002 keeps the rows and adds ix_accounts_updated_ms; downgrade drops it."""
    engine = db_engine.create_engine(store_url)
    try:
        db_engine.upgrade(engine, "0002")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO accounts (profile, number, balance_cents, created_ms, updated_ms) "
                                 "VALUES ('p', '+491', 5, 1, 2)"))
        assert "ix_accounts_updated_ms" not in {i["name"] for i in sa.inspect(engine).get_indexes("accounts")}
        db_engine.upgrade(engine, "0003")
        assert "ix_accounts_updated_ms" in {i["name"] for i in sa.inspect(engine).get_indexes("accounts")}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT balance_cents, updated_ms FROM accounts")).one() == (5, 2)
        _downgrade(engine, "0002")
        assert "ix_accounts_updated_ms" not in {i["name"] for i in sa.inspect(engine).get_indexes("accounts")}
    finally:
        engine.dispose()


def _ledger_row(conn, row_id: int, kind: str, amount_cents: int, source: str, ref: str, note: str) -> None:
    conn.execute(sa.text("INSERT INTO ledger (id, account_id, kind, amount_cents, balance_after_cents, source, "
                         "external_ref, actor, note, at_ms) VALUES (:id, 1, :kind, :amount, 0, :source, :ref, "
                         "'w', :note, 0)"),
                 dict(id=row_id, kind=kind, amount=amount_cents, source=source, ref=ref, note=note))


def test_0005_tags_each_payments_first_credit_and_then_refuses_a_second(store_url):
    """0005 on a database at 0004 gives a payment's first top-up and bonus rows its id (a second capture
    credited before keeps its rows, untagged); afterwards the database itself refuses a second top-up row
    of that payment; downgrade drops the column."""
    engine = db_engine.create_engine(store_url)
    try:
        db_engine.upgrade(engine, "0004")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO accounts (id, profile, number, balance_cents, created_ms, updated_ms) "
                                 "VALUES (1, 'demo', '+491', 2200, 0, 0)"))
            conn.execute(sa.text("INSERT INTO payments (id, method, profile, number, amount_cents, bonus_cents, "
                                 "currency, reference, provider_ref, state, created_ms, updated_ms) VALUES "
                                 "(7, 'paypal', 'demo', '+491', 1000, 100, 'EUR', 'REF7', 'ORDER7', 'completed', 0, 0)"))
            _ledger_row(conn, 1, "topup", 1000, "paypal", "CAP-A", "payment REF7")
            _ledger_row(conn, 2, "bonus", 100, "paypal", "CAP-A#bonus", "payment REF7")
            _ledger_row(conn, 3, "topup", 1000, "paypal", "CAP-B", "payment REF7")  # the double credit
            _ledger_row(conn, 4, "bonus", 100, "paypal", "CAP-B#bonus", "payment REF7")
            _ledger_row(conn, 5, "manual", 50, "cli", "m1", "payment REF7")
            _ledger_row(conn, 6, "topup", 1000, "klarna", "ORDER-K", "payment REF7")  # not the payment's method
        db_engine.upgrade(engine, "0005")
        with engine.connect() as conn:
            tags = dict(conn.execute(sa.text("SELECT id, payment_id FROM ledger ORDER BY id")).all())
        assert tags == {1: 7, 2: 7, 3: None, 4: None, 5: None, 6: None}
        try:
            with engine.begin() as conn:
                _ledger_row(conn, 9, "topup", 1000, "paypal", "CAP-C", "payment REF7")
                conn.execute(sa.text("UPDATE ledger SET payment_id = 7 WHERE id = 9"))
        except sa.exc.IntegrityError:
            pass
        else:
            raise AssertionError("a second top-up row of one payment was accepted")
        _downgrade(engine, "0004")
        assert "payment_id" not in {c["name"] for c in sa.inspect(engine).get_columns("ledger")}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM ledger")).scalar() == 6
    finally:
        engine.dispose()


def test_0007_adds_the_portals_tables_keeping_rows_and_downgrades(store_url):
    """0007 on a database at 0006 keeps its audit rows and adds portal_users, portal_sessions and
    portal_login_failures (a user name is unique); downgrade drops exactly those three."""
    engine = db_engine.create_engine(store_url)
    portal = {"portal_users", "portal_sessions", "portal_login_failures"}
    try:
        db_engine.upgrade(engine, "0006")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO audit (at_ms, actor, action) VALUES (1, 'node:a', 'pin_lockout')"))
        assert not portal & set(sa.inspect(engine).get_table_names())
        db_engine.upgrade(engine, "0007")
        assert portal <= set(sa.inspect(engine).get_table_names())
        insert = sa.text("INSERT INTO portal_users (name, role, password_hash, created_ms, updated_ms) "
                         "VALUES ('anna', 'provider', 'h', 1, 1)")
        with engine.begin() as conn:
            conn.execute(insert)
        try:
            with engine.begin() as conn:
                conn.execute(insert)
        except sa.exc.IntegrityError:
            pass
        else:
            raise AssertionError("a second user of one name was accepted")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT profiles, language FROM portal_users")).one() == ("", "de")
        _downgrade(engine, "0006")
        assert not portal & set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM audit")).scalar() == 1
    finally:
        engine.dispose()


def test_0008_adds_caller_received_keeping_records_and_downgrades(store_url):
    """0008 on a database at 0006 keeps the call records (their caller_received NULL) and takes a number in
    the new column; downgrade to 0006 drops the column and keeps the rows."""
    engine = db_engine.create_engine(store_url)
    try:
        db_engine.upgrade(engine, "0006")
        insert = ("INSERT INTO call_records (call_id, profile, service_number, caller, identity_source, invite_ms) "
                  "VALUES (:call_id, 'demo', '+493012345678', '+4915112345678', 'from', 1)")
        with engine.begin() as conn:
            conn.execute(sa.text(insert), {"call_id": "old"})
        db_engine.upgrade(engine, "0008")
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE call_records SET caller_received = '015112345678x' WHERE call_id = 'old'"))
            assert conn.execute(sa.text("SELECT caller, caller_received FROM call_records")).one() == (
                "+4915112345678", "015112345678x")
        _downgrade(engine, "0006")
        assert "caller_received" not in {c["name"] for c in sa.inspect(engine).get_columns("call_records")}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT call_id FROM call_records")).scalars().all() == ["old"]
    finally:
        engine.dispose()


def test_0009_names_api_keys_and_downgrades(store_url):
    """0009 gives the keys made before the name "" and no last use; downgrade to 0008 drops both columns."""
    engine = db_engine.create_engine(store_url)
    try:
        db_engine.upgrade(engine, "0008")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO api_keys (id, provider, key_hash, profiles, created_ms) "
                                 "VALUES ('k1', 'Demo', 'h', 'demo', 5)"))
        db_engine.upgrade(engine, "0009")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name, last_used_ms FROM api_keys")).one() == ("", None)
        _downgrade(engine, "0008")
        assert {"name", "last_used_ms"}.isdisjoint(c["name"] for c in sa.inspect(engine).get_columns("api_keys"))
    finally:
        engine.dispose()
