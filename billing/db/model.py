"""Every table of the prepaid store, as SQLAlchemy Core ``Table``s.

One ``MetaData`` for all parts (accounts and ledger, call sessions, call
records, payments, API keys); the Alembic migrations in ``billing/migrations``
produce exactly this (``tests/billing/test_migrations.py`` compares them).

Conventions: times are integer milliseconds since the epoch, UTC (``*_ms``);
money is integer cents (``*_cents``, BIGINT); tariffs are exact decimals kept
as text. Constraint names follow :data:`NAMING` so that migrations can name
them on every database.
"""

from __future__ import annotations

import sqlalchemy as sa

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

#: an auto-incrementing 64-bit id (SQLite only auto-increments INTEGER PRIMARY KEY)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: the kinds of ledger row
LEDGER_KINDS = ("topup", "bonus", "manual", "api_credit", "api_debit", "call_debit",
                "call_refund", "reversal", "correction")

accounts = sa.Table(
    "accounts", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("profile", sa.String(64), nullable=False),
    sa.Column("number", sa.String(32), nullable=False),
    sa.Column("balance_cents", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("pin", sa.String(16), nullable=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.CheckConstraint("balance_cents >= 0", name="balance_not_negative"),
    sa.UniqueConstraint("profile", "number"),
    sa.UniqueConstraint("profile", "pin"),
    sa.Index(None, "updated_ms"),  # 0003: the balance watcher asks what changed since a time
)

ledger = sa.Table(
    "ledger", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("balance_after_cents", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("external_ref", sa.String(200), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False, server_default=""),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("call_session_id", sa.String(36), nullable=True),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    # migration 0005: the payment (a row of ``payments``, one payment at its provider) that this row
    # credits; its top-up and its bonus once each, however many captures, orders or notifications name it
    sa.Column("payment_id", BigId, sa.ForeignKey("payments.id"), nullable=True),
    sa.UniqueConstraint("source", "external_ref"),
    sa.UniqueConstraint("payment_id", "kind"),
    sa.Index(None, "account_id", "at_ms"),
    sa.Index(None, "at_ms"),
    sa.Index(None, "call_session_id"),  # migration 0002: what a call session was debited
)

call_sessions = sa.Table(
    "call_sessions", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("profile", sa.String(64), nullable=False),
    sa.Column("call_id", sa.String(200), nullable=False),
    sa.Column("node_id", sa.String(200), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # open / settled
    sa.Column("caller_class", sa.String(16), nullable=False),
    # the tariff snapshot taken at open, so a reload does not change a running call
    sa.Column("per_minute", sa.String(32), nullable=False),
    sa.Column("first_s", sa.Integer, nullable=False),
    sa.Column("next_s", sa.Integer, nullable=False),
    sa.Column("connect_charge_cents", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("first_caller_per_minute", sa.String(32), nullable=True),
    sa.Column("first_caller_period_s", sa.Integer, nullable=True),
    sa.Column("opened_ms", sa.BigInteger, nullable=False),
    sa.Column("charging_started_ms", sa.BigInteger, nullable=True),
    sa.Column("reserved_cents", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("charged_cents", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("paid_s", sa.Integer, nullable=False, server_default="0"),
    sa.Column("debit_seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("billed_s", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_until_ms", sa.BigInteger, nullable=False),
    # the last time the node holding the session said it was alive (migration 0002): a reconciler
    # charges a dead node's call up to here
    sa.Column("renewed_ms", sa.BigInteger, nullable=True),
    sa.Column("settled_ms", sa.BigInteger, nullable=True),
    sa.Column("end_reason", sa.String(200), nullable=True),
    sa.Index(None, "state", "lease_until_ms"),
    sa.Index(None, "account_id"),
)

call_records = sa.Table(
    "call_records", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(200), nullable=False),
    sa.Column("profile", sa.String(64), nullable=False),
    sa.Column("service_number", sa.String(32), nullable=False),
    sa.Column("caller", sa.String(32), nullable=True),
    sa.Column("identity_source", sa.String(8), nullable=False),  # from / pai / pin / none
    sa.Column("privacy", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("caller_class", sa.String(16), nullable=True),
    sa.Column("agent_tried", sa.String(400), nullable=True),
    sa.Column("agent_answered", sa.String(400), nullable=True),
    sa.Column("invite_ms", sa.BigInteger, nullable=False),
    sa.Column("answer_ms", sa.BigInteger, nullable=True),
    sa.Column("end_ms", sa.BigInteger, nullable=True),
    sa.Column("end_reason", sa.String(200), nullable=True),
    sa.Column("a_status", sa.Integer, nullable=True),
    sa.Column("b_status", sa.Integer, nullable=True),
    sa.Column("billed_s", sa.Integer, nullable=False, server_default="0"),
    sa.Column("charge_cents", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("call_session_id", sa.String(36), nullable=True),
    # migration 0008: the number as the INVITE's From (or PAI) gave it, E.164 where it could be read, else
    # the user part as received (cut to 32); ``caller`` is the one billed, which a PIN may have named
    sa.Column("caller_received", sa.String(32), nullable=True),
    sa.Index(None, "profile", "caller", "invite_ms"),
    sa.Index(None, "call_id"),
)

first_callers = sa.Table(
    "first_callers", metadata,
    sa.Column("profile", sa.String(64), primary_key=True),
    sa.Column("number", sa.String(32), primary_key=True),
    sa.Column("first_call_ms", sa.BigInteger, nullable=False),
)

payments = sa.Table(
    "payments", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("method", sa.String(16), nullable=False),  # paypal / klarna / paysafecard
    sa.Column("profile", sa.String(64), nullable=False),
    sa.Column("number", sa.String(32), nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("bonus_cents", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reference", sa.String(64), nullable=False),
    sa.Column("provider_ref", sa.String(200), nullable=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("reference"),
    sa.UniqueConstraint("method", "provider_ref"),
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("provider", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(200), nullable=False),
    sa.Column("profiles", sa.Text, nullable=False),  # comma separated
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("revoked_ms", sa.BigInteger, nullable=True),
    # migration 0009: the label its maker gave it, and when the API last took it (stamped at most once a minute)
    sa.Column("name", sa.String(100), nullable=False, server_default=""),
    sa.Column("last_used_ms", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("key_hash"),
)

idempotency_keys = sa.Table(
    "idempotency_keys", metadata,
    sa.Column("api_key_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("request_hash", sa.String(128), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

shortfalls = sa.Table(
    "shortfalls", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("external_ref", sa.String(200), nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("source", "external_ref"),
)

#: every customer PIN typed (migration 0006): its outcome is "pending" while the PIN is looked up, then
#: "wrong" or "right"; what is not "right" counts towards the guessing limit of its source address and
#: of the account the call named (billing/pinguard.py). Rows older than the limit's reach are pruned.
pin_attempts = sa.Table(
    "pin_attempts", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("profile", sa.String(64), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),       # the address the INVITE came from
    sa.Column("account", sa.String(32), nullable=True),       # the E.164 number the call named, if any
    sa.Column("call_id", sa.String(200), nullable=False),
    sa.Column("outcome", sa.String(8), nullable=False),       # pending / wrong / right
    sa.Index(None, "source", "at_ms"),
    sa.Index(None, "profile", "account", "at_ms"),
    sa.Index(None, "at_ms"),
)

#: what was changed or decided, by whom, from where (migration 0006): one row per event, written in the
#: transaction of the change itself, and never updated or deleted by the code. ``action`` says what
#: happened (``pin_lockout``...), ``subject`` to what; ``detail``, ``before`` and ``after`` are text for
#: people to read.
audit = sa.Table(
    "audit", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),       # node:<id>, user:<login>, webhook:<provider>...
    sa.Column("source", sa.String(64), nullable=False, server_default=""),   # the peer's address, if any
    sa.Column("profile", sa.String(64), nullable=False, server_default=""),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False, server_default=""),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("before", sa.Text, nullable=False, server_default=""),
    sa.Column("after", sa.Text, nullable=False, server_default=""),
    sa.Index(None, "at_ms"),
    sa.Index(None, "profile", "at_ms"),
)

#: the provider portal's logins (migration 0007): an operator sees every profile, a provider the
#: comma-separated ``profiles``; ``password_hash`` is a salted scrypt (webhook/portal/auth.py), never logged
portal_users = sa.Table(
    "portal_users", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),          # operator / provider
    sa.Column("profiles", sa.Text, nullable=False, server_default=""),
    sa.Column("language", sa.String(2), nullable=False, server_default="de"),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

#: the portal's logged-in sessions (migration 0007), shared by every node: the row is found by the SHA-256
#: of the random id in the cookie (the id itself is stored nowhere); ``seen_ms`` ends it after the idle
#: timeout; ``notice`` is shown once on the next page
portal_sessions = sa.Table(
    "portal_sessions", metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.String(64), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("seen_ms", sa.BigInteger, nullable=False),
    sa.Column("notice", sa.Text, nullable=False, server_default=""),
    sa.Index(None, "user_name"),
    sa.Index(None, "seen_ms"),
)

#: every wrong portal password (migration 0007), counted per user name and per client address against
#: ``[portal] login_max_failures``; rows older than the rule's reach are pruned
portal_login_failures = sa.Table(
    "portal_login_failures", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("user_name", sa.String(64), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Index(None, "user_name", "at_ms"),
    sa.Index(None, "source", "at_ms"),
    sa.Index(None, "at_ms"),
)
