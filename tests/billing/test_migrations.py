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
