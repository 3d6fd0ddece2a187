"""API keys of the balance API: a random token shown once, stored as its SHA-256, limited to profiles.

A token reads ``ppk_<id>_<secret>``; the row is found by its id and the
hash compared in constant time, so neither the token nor its hash is ever
looked up by value.

Making and revoking a key with an ``actor`` (the portal's user, the operator at
the command line) writes an audit row per profile of the key, in the same
transaction. A key's last use is stamped when it authenticates, at most once a
minute (:data:`LAST_USED_STEP_MS`), so that a busy key does not write a row per
request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from billing.db import model
from billing.db.audit import AuditEntry
from billing.db.audit import add as audit

K = model.api_keys
#: a key's last use is stamped again only this long after the last stamp
LAST_USED_STEP_MS = 60_000

_TOKEN = re.compile(r"^ppk_([0-9a-f]{16})_([A-Za-z0-9_\-]{20,100})$")


@dataclass(frozen=True)
class ApiKey:
    id: str
    provider: str
    profiles: tuple[str, ...]
    created_ms: int
    revoked_ms: int | None
    name: str = ""
    last_used_ms: int | None = None

    def may(self, profile: str) -> bool:
        return profile in self.profiles


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _to_key(row) -> ApiKey:
    return ApiKey(id=row.id, provider=row.provider, profiles=tuple(p for p in row.profiles.split(",") if p),
                  created_ms=row.created_ms, revoked_ms=row.revoked_ms, name=row.name, last_used_ms=row.last_used_ms)


def _audit(conn, key: ApiKey, action: str, now_ms: int, actor: str, source: str, before: str, after: str) -> None:
    for profile in key.profiles:
        audit(conn, AuditEntry(at_ms=now_ms, actor=actor, action=action, subject=key.id, profile=profile,
                               source=source, detail=f"{key.name or key.provider}", before=before, after=after))


def _described(key: ApiKey) -> str:
    return f"live: {key.name or key.provider} for {key.provider} ({','.join(key.profiles)})"


def create(conn, provider: str, profiles: tuple[str, ...], now_ms: int, *, name: str = "",
           actor: str | None = None, source: str = "") -> tuple[ApiKey, str]:
    """A new key for ``provider`` over ``profiles``: (the key, the token to hand over once). With ``actor``,
    audited (``apikey_create``)."""
    key_id = secrets.token_hex(8)
    token = f"ppk_{key_id}_{secrets.token_urlsafe(32)}"
    conn.execute(sa.insert(K).values(id=key_id, provider=provider, key_hash=token_hash(token),
                                     profiles=",".join(profiles), created_ms=now_ms, revoked_ms=None, name=name))
    key = ApiKey(key_id, provider, tuple(profiles), now_ms, None, name)
    if actor is not None:
        _audit(conn, key, "apikey_create", now_ms, actor, source, "no key", _described(key))
    return key, token


def revoke(conn, key_id: str, now_ms: int, *, actor: str | None = None, source: str = "",
           profile: str | None = None) -> bool:
    """Revoke a key by id (with ``profile``: only a key for that profile); False when there is no such live
    key. With ``actor``, audited (``apikey_revoke``)."""
    row = conn.execute(sa.select(K).where(K.c.id == key_id, K.c.revoked_ms.is_(None))).first()
    if row is None or (profile is not None and not _to_key(row).may(profile)):
        return False
    result = conn.execute(sa.update(K).where(K.c.id == key_id, K.c.revoked_ms.is_(None)).values(revoked_ms=now_ms))
    if result.rowcount == 1 and actor is not None:
        _audit(conn, _to_key(row), "apikey_revoke", now_ms, actor, source, _described(_to_key(row)), "revoked")
    return result.rowcount == 1


def list_keys(conn, profile: str | None = None) -> list[ApiKey]:
    """Every key (with ``profile``: the keys for it), oldest first."""
    keys = [_to_key(r) for r in conn.execute(sa.select(K).order_by(K.c.created_ms, K.c.id))]
    return [k for k in keys if profile is None or k.may(profile)]


def authenticate(conn, token: str, now_ms: int | None = None) -> ApiKey | None:
    """The live key this token belongs to, or None. With ``now_ms``, its last use is stamped (at most once
    a :data:`LAST_USED_STEP_MS`: a conditional update, so that nodes racing stamp it once)."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    row = conn.execute(sa.select(K).where(K.c.id == match.group(1))).first()
    if row is None or row.revoked_ms is not None:
        return None
    if not hmac.compare_digest(row.key_hash.encode(), token_hash(token).encode()):
        return None
    key = _to_key(row)
    if now_ms is not None and (key.last_used_ms is None or now_ms - key.last_used_ms >= LAST_USED_STEP_MS):
        stale = sa.or_(K.c.last_used_ms.is_(None), K.c.last_used_ms <= now_ms - LAST_USED_STEP_MS)
        conn.execute(sa.update(K).where(K.c.id == key.id, stale).values(last_used_ms=now_ms))
    return key
