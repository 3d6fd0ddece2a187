"""Fixtures shared by every part's tests.

The PostgreSQL rule (issue 4): store tests run on SQLite and on PostgreSQL. The
server is ``$PREPAID_TEST_DATABASE_URL`` (default: 127.0.0.1:5432, database
``test``). When it does not answer, the suite says so loudly and skips those
tests, except with ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
import warnings

import pytest

DEFAULT_PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("PREPAID_TEST_DATABASE_URL") or DEFAULT_PG_URL


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


_pg_state: dict[str, str | None] = {}


def postgres_unavailable_reason() -> str | None:
    """None when the test PostgreSQL answers, else why not (checked once per run)."""
    if "reason" not in _pg_state:
        import sqlalchemy
        try:
            engine = sqlalchemy.create_engine(postgres_url(), connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("select 1"))
            engine.dispose()
            _pg_state["reason"] = None
        except Exception as exc:  # any failure to reach it is the same answer
            _pg_state["reason"] = f"PostgreSQL at {postgres_url()} does not answer: {exc}"
    return _pg_state["reason"]


def require_postgres() -> str:
    """The PostgreSQL URL, or skip loudly (fail under CI=true)."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        if in_ci():
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests may not be skipped)")
        warnings.warn(reason)
        pytest.skip(f"NO POSTGRESQL - SKIPPED: {reason}")
    return postgres_url()


def pytest_report_header(config):
    reason = postgres_unavailable_reason()
    if reason:
        return [f"!!! {reason}: PostgreSQL store tests will be SKIPPED (a failure under CI=true) !!!"]
    return [f"PostgreSQL for store tests: {postgres_url()}"]


# -- the store on SQLite and on PostgreSQL (issue 4) ----------------------------

#: the time a store fixture's clock starts at: 2026-11-01 00:00:00 UTC
STORE_EPOCH_S = 1_793_491_200


def pg_schema_url(base_url: str, schema: str) -> str:
    """``base_url`` with every connection's search_path set to ``schema`` alone."""
    from sqlalchemy.engine import make_url
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def pg_schema_url_factory():
    """Makes fresh PostgreSQL schemas (one per call) and drops them after the test; yields URLs into them."""
    import uuid

    import sqlalchemy
    base = require_postgres()
    engine = sqlalchemy.create_engine(base)
    made: list[str] = []

    def make() -> str:
        schema = f"t_{uuid.uuid4().hex[:20]}"
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        made.append(schema)
        return pg_schema_url(base, schema)
    yield make
    with engine.begin() as conn:
        for schema in made:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """An empty database: a SQLite file, or a PostgreSQL schema of this test's own (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
    else:
        yield request.getfixturevalue("pg_schema_url_factory")()


@pytest.fixture
def store_clock():
    """The ``task.Clock`` the ``store`` fixture takes its time from (starts at STORE_EPOCH_S)."""
    from twisted.internet.task import Clock
    clock = Clock()
    clock.advance(STORE_EPOCH_S)
    return clock


@pytest.fixture
def store(store_url, store_clock):
    """A migrated :class:`billing.store.Store` on ``store_url``, running its SQL inline (Deferreds fire at once)."""
    from billing.store import Store
    s = Store.open(store_url, store_clock, node_id="test-node", inline=True)
    s.upgrade()
    yield s
    s.close()


def fired(d):
    """The result of a Deferred that has already fired (raises its failure); for inline stores."""
    results: list = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    result = results[0]
    from twisted.python.failure import Failure
    if isinstance(result, Failure):
        result.raiseException()
    return result


def log_events_during(action) -> list[dict]:
    """The Twisted log events (every level) emitted while ``action()`` runs."""
    from twisted.logger import globalLogPublisher
    seen: list[dict] = []
    globalLogPublisher.addObserver(seen.append)
    try:
        action()
    finally:
        globalLogPublisher.removeObserver(seen.append)
    return seen
