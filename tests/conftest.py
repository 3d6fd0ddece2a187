"""Fixtures shared by every part's tests.

The PostgreSQL rule (issue 4): store tests run on SQLite and on PostgreSQL. The
server is ``$PREPAID_TEST_DATABASE_URL`` (default: 127.0.0.1:5432, database
``test``). When it does not answer, the suite says so loudly and skips those
tests, except with ``CI=true``, where that is a failure.

The suite runs on pytest-xdist workers (tox.ini), a test module to one worker
(so a module-scoped fixture is made once), the long modules first: each worker
has a PostgreSQL database and a slice of the RTP ports of its own (below).
"""

from __future__ import annotations

import os
import warnings

import pytest

DEFAULT_PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("PREPAID_TEST_DATABASE_URL") or DEFAULT_PG_URL


# -- parallel runs (pytest-xdist): what each worker must have of its own ----------------

def xdist_worker() -> str | None:
    """This process's xdist worker name (``gw0``, ``gw1``...), or None in a run without workers."""
    return os.environ.get("PYTEST_XDIST_WORKER") or None


def worker_index() -> int:
    """0 in a serial run and in worker gw0, 1 in gw1, and so on."""
    worker = xdist_worker()
    return int(worker[2:]) if worker and worker[2:].isdigit() else 0


def worker_rtp_range(low: int = 20000, high: int = 29999) -> tuple[int, int]:
    """This worker's slice of the RTP range ``low..high`` (all of it in a serial run): nodes of two workers
    never share an RTP port, so a late packet of one test's call cannot reach another test's call."""
    slices = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1))
    size = (high - low + 1) // slices
    first = low + (worker_index() % slices) * size
    return first, first + size - 1


def _worker_database_name(base_url: str, worker: str) -> str:
    """``<base database>_<worker>_<this run's id>``: two runs at once on one server never share one."""
    from sqlalchemy.engine import make_url
    run = (os.environ.get("PYTEST_XDIST_TESTRUNUID") or "")[:8]
    return f"{make_url(base_url).database}_{worker}" + (f"_{run}" if run else "")


def _renew_database(base_url: str, name: str, *, create: bool) -> None:
    """Drop database ``name`` on the server of ``base_url`` (its sessions ended), and make it anew if ``create``."""
    import sqlalchemy
    engine = sqlalchemy.create_engine(base_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if create:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        engine.dispose()


def pytest_configure(config):
    """Under xdist each worker's PostgreSQL tests, and the nodes they start in subprocesses (which take
    ``$PREPAID_TEST_DATABASE_URL`` from the environment), use a fresh database of that worker's own,
    ``<base database>_<worker>_<run id>`` with the same user. Where the server does not answer or will not make it,
    the worker uses the base database, where every test still has schemas of its own."""
    worker = xdist_worker()
    if worker is None or "PREPAID_WORKER_DATABASE_BASE" in os.environ:
        return
    from sqlalchemy.engine import make_url
    base = postgres_url()
    name = _worker_database_name(base, worker)
    try:
        _renew_database(base, name, create=True)
    except Exception:  # no server, no right to create: the base database serves (see above)
        return
    os.environ["PREPAID_WORKER_DATABASE_BASE"] = base
    os.environ["PREPAID_TEST_DATABASE_URL"] = make_url(base).set(database=name).render_as_string(hide_password=False)


def pytest_unconfigure(config):
    base = os.environ.pop("PREPAID_WORKER_DATABASE_BASE", None)
    worker = xdist_worker()
    if base is None or worker is None:
        return
    os.environ["PREPAID_TEST_DATABASE_URL"] = base
    try:
        _renew_database(base, _worker_database_name(base, worker), create=False)
    except Exception:  # left behind (the server went away): an empty database, harmless
        pass


#: markers of tests that take seconds each (real peers, real time): their modules are handed out first
LONG_MARKERS = ("slow", "sipp", "browser", "baresip")


def pytest_collection_modifyitems(config, items):
    """On xdist workers, the modules with a test marked slow, sipp or browser come first, each module's tests
    in their order: the workers take whole modules in this order (tox.ini), so the long ones are under way
    from the start, and the run ends on many short modules, not on one long one left for the end."""
    if xdist_worker() is None:
        return

    def module(item) -> str:
        return item.nodeid.split("::")[0]
    long_modules = {module(item) for item in items
                    if any(item.get_closest_marker(name) is not None for name in LONG_MARKERS)}
    items.sort(key=lambda item: module(item) not in long_modules)      # stable: False (long) first


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
    workers = " (under xdist: a database <that name>_gwN of each worker's own)" if config.getoption(
        "numprocesses", None) else ""
    return [f"PostgreSQL for store tests: {postgres_url()}{workers}"]


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
