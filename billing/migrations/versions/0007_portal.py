"""The provider portal: logins, sessions shared by the nodes, wrong passwords counted

``portal_users`` holds each login (role, profiles, language, scrypt hash); ``portal_sessions`` the
sessions by the hash of their id, so that any node behind a balancer knows them;
``portal_login_failures`` the wrong passwords that lock logging in per user name and per address.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'portal_users',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('profiles', sa.Text(), server_default='', nullable=False),
        sa.Column('language', sa.String(length=2), server_default='de', nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=False),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.Column('updated_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_portal_users')),
    )
    op.create_table(
        'portal_sessions',
        sa.Column('id_hash', sa.String(length=64), nullable=False),
        sa.Column('user_name', sa.String(length=64), nullable=False),
        sa.Column('csrf_token', sa.String(length=64), nullable=False),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.Column('seen_ms', sa.BigInteger(), nullable=False),
        sa.Column('notice', sa.Text(), server_default='', nullable=False),
        sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_portal_sessions')),
    )
    with op.batch_alter_table('portal_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_sessions_user_name'), ['user_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_portal_sessions_seen_ms'), ['seen_ms'], unique=False)
    op.create_table(
        'portal_login_failures',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('at_ms', sa.BigInteger(), nullable=False),
        sa.Column('user_name', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_login_failures')),
    )
    with op.batch_alter_table('portal_login_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_login_failures_user_name_at_ms'), ['user_name', 'at_ms'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_portal_login_failures_source_at_ms'), ['source', 'at_ms'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_portal_login_failures_at_ms'), ['at_ms'], unique=False)


def downgrade() -> None:
    op.drop_table('portal_login_failures')
    op.drop_table('portal_sessions')
    op.drop_table('portal_users')
