"""Alembic migrations of the prepaid store (``billing/migrations/versions``)."""
