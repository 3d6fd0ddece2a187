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
