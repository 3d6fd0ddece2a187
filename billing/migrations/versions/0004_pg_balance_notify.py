"""PostgreSQL: NOTIFY on every balance change, so other nodes hear it at once

A deferred constraint trigger on ``accounts`` sends
``pg_notify('prepaid_balance_<schema>', json)`` with profile, number,
balance_cents and updated_ms for every account whose balance a transaction
changed. Deferred, it runs at commit and reads the row as committed, so a
transaction that changes one balance twice (a top-up and its bonus) sends one
identical payload twice, which PostgreSQL folds into one notification; a
rolled-back transaction sends nothing. The channel carries the schema's name so that stores in
different schemas of one database do not hear each other. SQLite: nothing
(nodes share PostgreSQL; a command on the SQLite file is found by polling).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION prepaid_balance_notify() RETURNS trigger AS $$
DECLARE
    r record;
BEGIN
    SELECT profile, number, balance_cents, updated_ms INTO r FROM accounts WHERE id = NEW.id;
    IF FOUND THEN
        PERFORM pg_notify('prepaid_balance_' || current_schema(),
                          json_build_object('profile', r.profile, 'number', r.number,
                                            'balance_cents', r.balance_cents,
                                            'updated_ms', r.updated_ms)::text);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    op.execute("CREATE CONSTRAINT TRIGGER accounts_balance_notify AFTER UPDATE OF balance_cents ON accounts "
               "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION prepaid_balance_notify()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS accounts_balance_notify ON accounts")
    op.execute("DROP FUNCTION IF EXISTS prepaid_balance_notify()")
