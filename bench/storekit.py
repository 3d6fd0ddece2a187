"""What the store benchmarks share: seeded callers, fresh PostgreSQL schemas, the money check, a run on the reactor.

Used by ``billing.py`` (debits per second) and ``store_calls.py`` (CPU per call);
imported as a sibling (``bench/`` is on ``sys.path`` when a bench runs as a script).
"""

from __future__ import annotations

import json
import os
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from billing.db import engine as db_engine
from billing.db import ledger

DEFAULT_PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def pg_base_url() -> str:
    """``$PREPAID_TEST_DATABASE_URL``, else the local ``test`` database."""
    return os.environ.get("PREPAID_TEST_DATABASE_URL") or DEFAULT_PG_URL


def number(i: int) -> str:
    """The E.164 number of bench caller ``i``."""
    return f"+4930{i:08d}"


def seed(url: str, accounts: int, cents: int, *, profile: str = "bench") -> None:
    """Migrate the store at ``url`` and credit ``cents`` to callers 0..accounts-1 of ``profile``."""
    engine = db_engine.create_engine(url)
    db_engine.upgrade(engine)
    for i in range(accounts):
        ledger.credit(engine, profile, number(i), (ledger.Line("manual", cents, f"seed-{i}"),),
                      source="bench", actor="bench", note="", now_ms=0)
    engine.dispose()


def pg_unreachable(base: str) -> str | None:
    """None when PostgreSQL at ``base`` answers, else the first line of why not."""
    try:
        engine = sa.create_engine(base, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to reach it is the same answer
        return str(exc).splitlines()[0]


class PgSchemas:
    """Fresh schemas in the PostgreSQL at ``base``, each a URL whose search_path is that schema; drop() ends them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.made: list[str] = []

    def url(self) -> str:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        self._run(f'CREATE SCHEMA "{schema}"')
        self.made.append(schema)
        return make_url(self.base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)

    def drop(self) -> None:
        for schema in self.made:
            self._run(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self.made.clear()

    def _run(self, sql: str) -> None:
        engine = sa.create_engine(self.base)
        with engine.begin() as conn:
            conn.exec_driver_sql(sql)
        engine.dispose()


#: accounts whose balance differs from the sum of their ledger rows (0, always)
UNBALANCED_ACCOUNTS = ("SELECT count(*) FROM accounts a WHERE a.balance_cents <> "
                       "(SELECT coalesce(sum(amount_cents), 0) FROM ledger l WHERE l.account_id = a.id)")


def scalars(url: str, **queries: str) -> dict:
    """Each named query's single value, read from the store at ``url``."""
    engine = db_engine.create_engine(url)
    with engine.connect() as conn:
        values = {name: conn.execute(sa.text(sql)).scalar() for name, sql in queries.items()}
    engine.dispose()
    return values


def unbalanced_accounts(url: str) -> int:
    """How many accounts' balance differs from the sum of their ledger rows (0, always)."""
    return scalars(url, n=UNBALANCED_ACCOUNTS)["n"]


def run_on_reactor(main):
    """Run ``main()`` (a Deferred) on the global reactor until it fires; its result, or raise its failure."""
    from twisted.internet import reactor

    outcome: list = []

    def finish(result):
        outcome.append(result)
        if reactor.running:
            reactor.stop()

    reactor.callWhenRunning(lambda: main().addBoth(finish))
    reactor.run()
    result = outcome[0] if outcome else RuntimeError("the reactor stopped before the run ended")
    if hasattr(result, "raiseException"):
        result.raiseException()
    if isinstance(result, Exception):
        raise result
    return result


def write_results(name: str, results: dict) -> str:
    """Write ``results`` to ``bench/results/NAME.json``; the path."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    out = os.path.join(RESULTS_DIR, f"{name}.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
    return out
