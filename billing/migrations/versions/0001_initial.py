"""initial schema: accounts, ledger, call sessions and records, payments, API keys

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-29 02:25:39.663931
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('profile', sa.String(length=64), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('balance_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('pin', sa.String(length=16), nullable=True),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('balance_cents >= 0', name=op.f('ck_accounts_balance_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('profile', 'number', name=op.f('uq_accounts_profile_number')),
    sa.UniqueConstraint('profile', 'pin', name=op.f('uq_accounts_profile_pin'))
    )
    op.create_table('api_keys',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=200), nullable=False),
    sa.Column('key_hash', sa.String(length=200), nullable=False),
    sa.Column('profiles', sa.Text(), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('revoked_ms', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    op.create_table('call_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=200), nullable=False),
    sa.Column('profile', sa.String(length=64), nullable=False),
    sa.Column('service_number', sa.String(length=32), nullable=False),
    sa.Column('caller', sa.String(length=32), nullable=True),
    sa.Column('identity_source', sa.String(length=8), nullable=False),
    sa.Column('privacy', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('caller_class', sa.String(length=16), nullable=True),
    sa.Column('agent_tried', sa.String(length=400), nullable=True),
    sa.Column('agent_answered', sa.String(length=400), nullable=True),
    sa.Column('invite_ms', sa.BigInteger(), nullable=False),
    sa.Column('answer_ms', sa.BigInteger(), nullable=True),
    sa.Column('end_ms', sa.BigInteger(), nullable=True),
    sa.Column('end_reason', sa.String(length=200), nullable=True),
    sa.Column('a_status', sa.Integer(), nullable=True),
    sa.Column('b_status', sa.Integer(), nullable=True),
    sa.Column('billed_s', sa.Integer(), server_default='0', nullable=False),
    sa.Column('charge_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('call_session_id', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_records'))
    )
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_records_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_records_profile_caller_invite_ms'), ['profile', 'caller', 'invite_ms'], unique=False)

    op.create_table('first_callers',
    sa.Column('profile', sa.String(length=64), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('first_call_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('profile', 'number', name=op.f('pk_first_callers'))
    )
    op.create_table('idempotency_keys',
    sa.Column('api_key_id', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=128), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('api_key_id', 'key', name=op.f('pk_idempotency_keys'))
    )
    op.create_table('payments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('profile', sa.String(length=64), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('bonus_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.Column('provider_ref', sa.String(length=200), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
    sa.UniqueConstraint('method', 'provider_ref', name=op.f('uq_payments_method_provider_ref')),
    sa.UniqueConstraint('reference', name=op.f('uq_payments_reference'))
    )
    op.create_table('call_sessions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('profile', sa.String(length=64), nullable=False),
    sa.Column('call_id', sa.String(length=200), nullable=False),
    sa.Column('node_id', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('caller_class', sa.String(length=16), nullable=False),
    sa.Column('per_minute', sa.String(length=32), nullable=False),
    sa.Column('first_s', sa.Integer(), nullable=False),
    sa.Column('next_s', sa.Integer(), nullable=False),
    sa.Column('connect_charge_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('first_caller_per_minute', sa.String(length=32), nullable=True),
    sa.Column('first_caller_period_s', sa.Integer(), nullable=True),
    sa.Column('opened_ms', sa.BigInteger(), nullable=False),
    sa.Column('charging_started_ms', sa.BigInteger(), nullable=True),
    sa.Column('reserved_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('charged_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('paid_s', sa.Integer(), server_default='0', nullable=False),
    sa.Column('debit_seq', sa.Integer(), server_default='0', nullable=False),
    sa.Column('billed_s', sa.Integer(), server_default='0', nullable=False),
    sa.Column('lease_until_ms', sa.BigInteger(), nullable=False),
    sa.Column('settled_ms', sa.BigInteger(), nullable=True),
    sa.Column('end_reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_call_sessions_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_sessions'))
    )
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_sessions_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_sessions_state_lease_until_ms'), ['state', 'lease_until_ms'], unique=False)

    op.create_table('ledger',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('balance_after_cents', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('external_ref', sa.String(length=200), nullable=False),
    sa.Column('actor', sa.String(length=200), server_default='', nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('call_session_id', sa.String(length=36), nullable=True),
    sa.Column('at_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_ledger_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger')),
    sa.UniqueConstraint('source', 'external_ref', name=op.f('uq_ledger_source_external_ref'))
    )
    with op.batch_alter_table('ledger', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_account_id_at_ms'), ['account_id', 'at_ms'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_at_ms'), ['at_ms'], unique=False)

    op.create_table('shortfalls',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('external_ref', sa.String(length=200), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('at_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_shortfalls_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shortfalls')),
    sa.UniqueConstraint('source', 'external_ref', name=op.f('uq_shortfalls_source_external_ref'))
    )


def downgrade() -> None:
    op.drop_table('shortfalls')
    with op.batch_alter_table('ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_at_ms'))
        batch_op.drop_index(batch_op.f('ix_ledger_account_id_at_ms'))

    op.drop_table('ledger')
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_sessions_state_lease_until_ms'))
        batch_op.drop_index(batch_op.f('ix_call_sessions_account_id'))

    op.drop_table('call_sessions')
    op.drop_table('payments')
    op.drop_table('idempotency_keys')
    op.drop_table('first_callers')
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_records_profile_caller_invite_ms'))
        batch_op.drop_index(batch_op.f('ix_call_records_call_id'))

    op.drop_table('call_records')
    op.drop_table('api_keys')
    op.drop_table('accounts')
