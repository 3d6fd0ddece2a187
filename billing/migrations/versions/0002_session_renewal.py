"""call sessions: the time of the last lease renewal; ledger rows by call session

A reconciler charges a dead node's call up to its last renewal, which the
lease's end alone does not say once nodes differ in lease length. Settling sums
a session's ledger rows, which wants an index on ``ledger.call_session_id``.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('renewed_ms', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('ledger', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_call_session_id'), ['call_session_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_call_session_id'))
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.drop_column('renewed_ms')
