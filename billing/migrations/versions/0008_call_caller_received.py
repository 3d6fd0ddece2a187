"""call_records.caller_received: the caller's number as the INVITE gave it, beside the one identified

``caller`` is the number the call was billed to (From, P-Asserted-Identity or the account a PIN
named); the provider portal's call list also shows what the carrier sent, so that a caller whose
number does not match an account (a typo when the account was made, a number sent without its
leading digit) can be told apart from one who has none. The From's (or PAI's) number, normalised
to E.164 where it could be, else its user part as received, cut to 32 characters; NULL for the
records written before, and where the INVITE named no number.

Revision ID: 0008
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('caller_received', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.drop_column('caller_received')
