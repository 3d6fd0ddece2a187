"""Prepared statements (billing/db/prepared.py) on SQLite and PostgreSQL: the same rows as SQLAlchemy's own
execute, SQLAlchemy's exceptions, its bind conversions; statements it cannot run plainly are refused."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam

from billing.db import model
from billing.db.prepared import Prepared

A, FC, R = model.accounts, model.first_callers, model.call_records


def _account(conn, number, balance):
    conn.execute(sa.insert(A).values(profile="demo", number=number, balance_cents=balance, created_ms=1,
                                     updated_ms=1))


def test_rows_and_counts_are_what_sqlalchemy_gives(engine):
    """A select, a conditional UPDATE ... RETURNING (taken and not taken) and a plain UPDATE answer the same
    rows and counts as SQLAlchemy's execute of the same statement, with the literal the statement carries."""
    take = (sa.update(A).where(A.c.number == bindparam("number"), A.c.balance_cents >= bindparam("amount"),
                               A.c.profile == "demo")
            .values(balance_cents=A.c.balance_cents - bindparam("amount")).returning(A.c.balance_cents, A.c.number))
    select = sa.select(A.c.number, A.c.balance_cents).where(A.c.profile == "demo").order_by(A.c.number)
    with engine.begin() as conn:
        _account(conn, "+4930100", 500)
        _account(conn, "+4930200", 50)
        assert Prepared(take).first(conn, number="+4930100", amount=200) == (300, "+4930100")
        assert Prepared(take).first(conn, number="+4930200", amount=200) is None
        assert Prepared(select).rows(conn) == [tuple(r) for r in conn.execute(select)]
        assert Prepared(select).scalar(conn) == "+4930100"
        touch = sa.update(A).where(A.c.profile == "demo").values(updated_ms=bindparam("now"))
        assert Prepared(touch).rowcount(conn, now=7) == 2
        assert conn.execute(sa.select(A.c.updated_ms)).scalars().all() == [7, 7]


def test_a_unique_violation_is_sqlalchemys_integrity_error_and_a_savepoint_keeps_the_transaction(engine):
    """The driver's error arrives as sqlalchemy.exc.IntegrityError (what callers catch); rolled back to a
    savepoint, the transaction goes on and commits what came before."""
    insert = Prepared(sa.insert(FC).values(profile="demo", number=bindparam("number"), first_call_ms=1))
    with engine.begin() as conn:
        insert.rowcount(conn, number="+4930100")
        with pytest.raises(sa.exc.IntegrityError):
            with conn.begin_nested():
                insert.rowcount(conn, number="+4930100")
        insert.rowcount(conn, number="+4930200")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(FC)).scalar() == 2


class Shouted(sa.types.TypeDecorator):
    """A string type whose bind conversion upper-cases (so it shows whether conversions are applied)."""

    impl = sa.String
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return value.upper()


def test_bind_conversions_are_applied_and_many_writes_every_row(engine):
    """A parameter's type converts its value on the way in, as SQLAlchemy would (and a Boolean reads
    back as a bool through SQLAlchemy); ``many`` writes one row per parameter dict."""
    insert = Prepared(sa.insert(R).values(call_id=bindparam("call_id", type_=Shouted()), profile="demo",
                                          service_number="+4930", identity_source="from",
                                          privacy=bindparam("privacy"), invite_ms=1))
    with engine.begin() as conn:
        insert.many(conn, [{"call_id": "a", "privacy": True}, {"call_id": "b", "privacy": False}])
    with engine.connect() as conn:
        rows = conn.execute(sa.select(R.c.call_id, R.c.privacy).order_by(R.c.call_id)).all()
    assert [tuple(r) for r in rows] == [("A", True), ("B", False)]


def test_statements_that_need_sqlalchemys_result_handling_are_refused(engine):
    """Rows come back as the driver gives them, so a result column that needs converting (a Boolean on
    SQLite) is refused when the statement is first run; so is an IN list (an expanding parameter)."""
    boolean = Prepared(sa.select(R.c.privacy))
    in_list = Prepared(sa.select(A.c.id).where(A.c.number.in_(bindparam("numbers", expanding=True))))
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            with pytest.raises(TypeError, match="result conversion"):
                boolean.rows(conn)
        with pytest.raises(TypeError, match="IN list"):
            in_list.rows(conn, numbers=["+4930100"])
