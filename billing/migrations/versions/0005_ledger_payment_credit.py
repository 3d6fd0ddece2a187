"""ledger: the payment a credit row is for, credited once per payment (UNIQUE payment_id, kind)

A payment at a provider (a PayPal order, a Klarna order, a paysafecard
payment: one row of ``payments``) may be named by more than one money
movement: a signed PayPal notification can carry a second capture id for the
same order, a Klarna session a second order. Keyed by those ids alone, each
credited again. From here a payment's credit rows carry ``payment_id``, and
UNIQUE (payment_id, kind) lets a payment have one ``topup`` row and one
``bonus`` row, whatever names them; rows that credit no payment leave it NULL
(several NULLs never collide, on SQLite and PostgreSQL alike).

Rows written before: a payment's credit rows are found by their note
(``payment <reference>``, as webhook/payments.py writes it) and source (the
payment's method); the first top-up and the first bonus of each payment get
its id. A payment credited twice before this revision keeps its second rows as
history, untagged: the money they moved is the operator's to correct
(``prepaid adjust``), not a migration's.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

#: the earliest top-up and bonus row of each payment, matched by source = method and the note
BACKFILL = """
UPDATE ledger SET payment_id = (
    SELECT p.id FROM payments p WHERE p.method = ledger.source AND ledger.note = 'payment ' || p.reference)
WHERE id IN (
    SELECT MIN(l.id) FROM ledger l
    JOIN payments p ON p.method = l.source AND l.note = 'payment ' || p.reference
    WHERE l.kind IN ('topup', 'bonus')
    GROUP BY p.id, l.kind)
"""


def upgrade() -> None:
    with op.batch_alter_table('ledger', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
    op.execute(BACKFILL)
    with op.batch_alter_table('ledger', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_ledger_payment_id_payments'), 'payments', ['payment_id'], ['id'])
        batch_op.create_unique_constraint(batch_op.f('uq_ledger_payment_id_kind'), ['payment_id', 'kind'])


def downgrade() -> None:
    with op.batch_alter_table('ledger', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_ledger_payment_id_kind'), type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_ledger_payment_id_payments'), type_='foreignkey')
        batch_op.drop_column('payment_id')
