"""API keys of the balance API: a random token shown once, stored as its SHA-256, limited to profiles.

A token reads ``ppk_<id>_<secret>``; the row is found by its id and the
hash compared in constant time, so neither the token nor its hash is ever
looked up by value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from billing.db import model

K = model.api_keys

_TOKEN = re.compile(r"^ppk_([0-9a-f]{16})_([A-Za-z0-9_\-]{20,100})$")


@dataclass(frozen=True)
class ApiKey:
    id: str
    provider: str
    profiles: tuple[str, ...]
    created_ms: int
    revoked_ms: int | None

    def may(self, profile: str) -> bool:
        return profile in self.profiles


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _to_key(row) -> ApiKey:
    return ApiKey(id=row.id, provider=row.provider, profiles=tuple(p for p in row.profiles.split(",") if p),
                  created_ms=row.created_ms, revoked_ms=row.revoked_ms)


def create(conn, provider: str, profiles: tuple[str, ...], now_ms: int) -> tuple[ApiKey, str]:
    """A new key for ``provider`` over ``profiles``: (the key, the token to hand over once)."""
    key_id = secrets.token_hex(8)
    token = f"ppk_{key_id}_{secrets.token_urlsafe(32)}"
    conn.execute(sa.insert(K).values(id=key_id, provider=provider, key_hash=token_hash(token),
                                     profiles=",".join(profiles), created_ms=now_ms, revoked_ms=None))
    return ApiKey(key_id, provider, tuple(profiles), now_ms, None), token


def revoke(conn, key_id: str, now_ms: int) -> bool:
    """Revoke a key by id; False when there is no such live key."""
    result = conn.execute(sa.update(K).where(K.c.id == key_id, K.c.revoked_ms.is_(None)).values(revoked_ms=now_ms))
    return result.rowcount == 1


def list_keys(conn) -> list[ApiKey]:
    return [_to_key(r) for r in conn.execute(sa.select(K).order_by(K.c.created_ms, K.c.id))]


def authenticate(conn, token: str) -> ApiKey | None:
    """The live key this token belongs to, or None."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    row = conn.execute(sa.select(K).where(K.c.id == match.group(1))).first()
    if row is None or row.revoked_ms is not None:
        return None
    if not hmac.compare_digest(row.key_hash.encode(), token_hash(token).encode()):
        return None
    return _to_key(row)
