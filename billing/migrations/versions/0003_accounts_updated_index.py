"""index accounts.updated_ms, for the balance watcher (changes made by other nodes and commands)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 02:40:00
"""

from __future__ import annotations

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_updated_ms'), ['updated_ms'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_updated_ms'))
