"""Portal passwords and the login decision: salted scrypt hashes, lockouts, a new session on success.

    stored = hash_password("correct horse")             # "scrypt$32768$8$1$<salt>$<key>"
    verify_password("correct horse", stored)            # True

:func:`login` is a ``thd``: it runs in the store's thread (scrypt takes a good fraction of a second
of CPU on purpose; the reactor never waits for it). A name that does not exist costs the same scrypt
as one that does, and gets the same answer as a wrong password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from billing.db import portal as db
from billing.pinguard import PinRule

from .sessions import NewSession, new_session

#: scrypt cost: N = 2**15, r = 8, p = 1 (32 MiB of memory per hash, the OWASP baseline)
SCRYPT_N = 2 ** 15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
_MAXMEM = 64 * 1024 * 1024


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=KEY_BYTES)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password``, with its parameters, for the store."""
    salt = os.urandom(SALT_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(_scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (compared in constant time)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        return hmac.compare_digest(_scrypt(password, _unb64(salt), int(n), int(r), int(p)), _unb64(key))
    except ValueError:
        return False


#: what an unknown name's password is checked against, so that it costs what a known one does
_NOBODY = hash_password(os.urandom(16).hex())


@dataclass(frozen=True)
class LoginOutcome:
    """A login's result: the new session (None when refused), and whether logging in is locked."""

    session: NewSession | None
    user: db.UserRow | None = None
    locked: bool = False


def login(conn, name: str, password: str, *, source: str, now_ms: int, rule: PinRule) -> LoginOutcome:
    """Check ``name``'s ``password`` from ``source`` (a ``thd``): a new session when right and not locked;
    a wrong one is counted (per name and per address) and may lock. A locked login is refused whatever
    the password, and counts no further failure."""
    if db.login_locked(conn, rule, name, source, now_ms=now_ms):
        verify_password(password, _NOBODY)
        return LoginOutcome(None, locked=True)
    found = db.user(conn, name)
    if found is None or not verify_password(password, found.password_hash):
        if found is None:
            verify_password(password, _NOBODY)
        locked = db.add_login_failure(conn, rule, name, source, now_ms=now_ms)
        return LoginOutcome(None, locked=locked)
    db.clear_login_failures(conn, name)
    session = new_session()
    db.add_session(conn, session.id_hash, found.name, session.csrf_token, now_ms=now_ms)
    return LoginOutcome(session, found)
