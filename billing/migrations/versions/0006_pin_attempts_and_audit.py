"""PIN attempts, counted across calls and nodes; a general audit table

``pin_attempts`` holds every customer PIN typed by a caller with a withheld number, so that the
guessing limit (billing/pinguard.py) holds across calls and across the nodes sharing the store.
``audit`` is one row per thing changed or decided (the first: a PIN lockout), never updated or
deleted by the code.

Revision ID: 0006
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'pin_attempts',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('at_ms', sa.BigInteger(), nullable=False),
        sa.Column('profile', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=64), nullable=False),
        sa.Column('account', sa.String(length=32), nullable=True),
        sa.Column('call_id', sa.String(length=200), nullable=False),
        sa.Column('outcome', sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pin_attempts')),
    )
    with op.batch_alter_table('pin_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pin_attempts_source_at_ms'), ['source', 'at_ms'], unique=False)
        batch_op.create_index(batch_op.f('ix_pin_attempts_profile_account_at_ms'), ['profile', 'account', 'at_ms'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_pin_attempts_at_ms'), ['at_ms'], unique=False)
    op.create_table(
        'audit',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('at_ms', sa.BigInteger(), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('source', sa.String(length=64), server_default='', nullable=False),
        sa.Column('profile', sa.String(length=64), server_default='', nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('subject', sa.String(length=200), server_default='', nullable=False),
        sa.Column('detail', sa.Text(), server_default='', nullable=False),
        sa.Column('before', sa.Text(), server_default='', nullable=False),
        sa.Column('after', sa.Text(), server_default='', nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit')),
    )
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_at_ms'), ['at_ms'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_profile_at_ms'), ['profile', 'at_ms'], unique=False)


def downgrade() -> None:
    op.drop_table('audit')
    op.drop_table('pin_attempts')
