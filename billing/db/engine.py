"""Creating the SQLAlchemy engine for a store URL, and running Alembic on it.

SQLite (the embedded default): the parent folder of the file is created; every
connection gets WAL, a busy timeout and foreign keys; every transaction starts
with ``BEGIN IMMEDIATE`` so that two writers (the server and an operator's
command) queue on the busy timeout instead of failing on a stale snapshot.
PostgreSQL: ``postgresql+psycopg://...``, a connection pool as big as the
store's thread pool.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from .prepared import Prepared

#: how long an SQLite writer waits for another before giving up
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: how every SQLite transaction begins (see the module docstring)
_BEGIN_IMMEDIATE = Prepared(sa.text("BEGIN IMMEDIATE"))

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")


def is_sqlite(url: str) -> bool:
    """Whether ``url`` is an SQLite store."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 5) -> sa.Engine:
    """An engine for ``url`` set up as the module docstring says."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return sa.create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                            future=True)


def _sqlite_engine(url) -> sa.Engine:
    path = url.database
    memory = not path or path == ":memory:"
    if not memory:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
    kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = sa.create_engine(url, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # let SQLAlchemy say when a transaction begins (below), not the driver
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        if not conn.connection.dbapi_connection.in_transaction:  # not begun by begin() below
            _BEGIN_IMMEDIATE.rowcount(conn)

    return engine


def begin(conn: sa.Connection) -> None:
    """Begin a transaction on the driver connection of ``conn``, as the engine would, without SQLAlchemy's
    transaction (see :mod:`billing.db.pool`): SQLite ``BEGIN IMMEDIATE``; PostgreSQL's driver begins by itself
    at the first statement."""
    if conn.dialect.name == "sqlite":
        _BEGIN_IMMEDIATE.rowcount(conn)


def alembic_config(url: str | None = None):
    """An Alembic ``Config`` for the migrations in ``billing/migrations`` (no ini file needed)."""
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the database of ``engine`` to ``revision`` (default: the newest)."""
    from alembic import command
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: sa.Engine) -> str | None:
    """The Alembic revision the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
