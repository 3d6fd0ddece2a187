"""api_keys.name and api_keys.last_used_ms: a label for the provider's own keys, and when each was last used

The provider portal lists a profile's balance-API keys by a name the provider gave them, with when
each was made and last used (the API stamps ``last_used_ms`` when a key authenticates, at most once a
minute per key). Keys made before: name "" and never used (NULL).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=100), server_default='', nullable=False))
        batch_op.add_column(sa.Column('last_used_ms', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('last_used_ms')
        batch_op.drop_column('name')
