"""Fixtures of the billing tests that need the database below the Store."""

from __future__ import annotations

import pytest

from billing.db import engine as db_engine


@pytest.fixture
def engine(store_url):
    """A migrated engine on ``store_url`` (a SQLite file or a PostgreSQL schema of this test's own)."""
    engine = db_engine.create_engine(store_url)
    db_engine.upgrade(engine)
    yield engine
    engine.dispose()
