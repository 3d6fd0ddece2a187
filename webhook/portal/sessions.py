"""Portal session ids and cookies: a random id in an HttpOnly, SameSite=Strict cookie, its hash in the store.

The id is 32 random bytes; the store keeps only its SHA-256 (:func:`id_hash`), so a copy of the
database logs nobody in. Each login makes a new id. The CSRF token of a session is random too, and
goes into every form of that session's pages.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

#: the session cookie's name
COOKIE = "portal_session"
#: the cookie of the login form's CSRF token (no session exists yet when it is posted)
LOGIN_COOKIE = "portal_login"


@dataclass(frozen=True)
class NewSession:
    """A session just made: the id for the cookie (never stored), its hash and its CSRF token."""

    id: str
    id_hash: str
    csrf_token: str


def id_hash(session_id: str) -> str:
    """What the store keeps of a session id."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_session() -> NewSession:
    session_id = new_token()
    return NewSession(session_id, id_hash(session_id), new_token())


def cookie(name: str, value: str, *, secure: bool, max_age_s: int | None = None) -> str:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Strict, Path=/, Secure over HTTPS; ``max_age_s`` 0 deletes."""
    parts = [f"{name}={value}", "HttpOnly", "SameSite=Strict", "Path=/"]
    if max_age_s is not None:
        parts.append(f"Max-Age={max_age_s}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
