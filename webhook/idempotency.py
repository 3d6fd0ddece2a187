"""``Idempotency-Key``: a retried POST takes effect once.

The first request with a key claims it (a row with status 0); the operation
runs; its answer is stored. A repeat with the same body gets the stored
answer; with another body a 422; while the first still runs a 409.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from billing.db import model

I = model.idempotency_keys


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\0" + path.encode() + b"\0" + body).hexdigest()


def claim(engine, key_id: str, key: str, req_hash: str, now_ms: int):
    """None when claimed for this request; else the existing (request_hash, status, body)."""
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(I).values(api_key_id=key_id, key=key, request_hash=req_hash, status=0,
                                             body="", created_ms=now_ms))
            return None
    except IntegrityError:
        with engine.begin() as conn:
            row = conn.execute(sa.select(I).where(I.c.api_key_id == key_id, I.c.key == key)).first()
            if row is None:  # released meanwhile: the caller may try again
                return ("", 0, "")
            return (row.request_hash, row.status, row.body)


def finish(conn, key_id: str, key: str, status: int, body: str) -> None:
    conn.execute(sa.update(I).where(I.c.api_key_id == key_id, I.c.key == key).values(status=status, body=body))


def release(conn, key_id: str, key: str) -> None:
    conn.execute(sa.delete(I).where(I.c.api_key_id == key_id, I.c.key == key, I.c.status == 0))
