"""The Alembic migrations produce exactly the tables of billing/db/model.py, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from billing.db import engine as db_engine
from billing.db.model import metadata


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
        from alembic import command
        cfg = db_engine.alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0002")
        assert "ix_accounts_updated_ms" not in {i["name"] for i in sa.inspect(engine).get_indexes("accounts")}
    finally:
        engine.dispose()
