"""The provider portal's rows: logins, sessions and wrong passwords, in the store every node shares.

Each function is a ``thd`` (a connection inside a transaction). Password hashes and session ids are
made elsewhere (``webhook/portal``): here a user carries an opaque ``password_hash``, and a session is
found by ``id_hash``. Every change of a login writes its audit row in the same transaction; so does
each lockout of logging in. The lockout rule (:class:`billing.pinguard.PinRule`: so many failures
within a window lock for a while) is the PIN guard's, applied to user names and client addresses.

An operator may clear a lockout (:func:`clear_lockout`): its audit row (``portal_login_unlock``, the
subject ``user <name>`` or ``address <ip>``) is also the mark from which that subject's wrong passwords
count again. The failures themselves stay, so clearing a user's lock leaves the lock of the address
they came from (an attacker's, perhaps) as it was, and the other way round.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import sqlalchemy as sa

from billing.pinguard import PinRule

from . import audit as _audit
from . import model

A = model.audit
U = model.portal_users
S = model.portal_sessions
F = model.portal_login_failures

#: the audit actions written here
USER_ADDED = "portal_user_add"
USER_PASSWORD = "portal_user_passwd"
USER_REMOVED = "portal_user_remove"
LOGIN_LOCKOUT = "portal_login_lockout"
LOGIN_UNLOCK = "portal_login_unlock"
#: the kinds of subject a lockout has, as its audit subject starts
LOCK_KINDS = ("user", "address")
#: the user name of a wrong password that no longer counts for its name (no login has it: names are not empty)
FORGOTTEN = ""


@dataclass(frozen=True)
class UserRow:
    """One portal login as stored; ``profiles`` is empty for an operator."""

    name: str
    role: str
    profiles: tuple[str, ...]
    language: str
    password_hash: str
    created_ms: int = 0
    updated_ms: int = 0

    def described(self) -> str:
        """The login for an audit row, without its hash."""
        return f"role={self.role} profiles={','.join(self.profiles)} language={self.language}"


@dataclass(frozen=True)
class SessionRow:
    """A live session: whose, its CSRF token, and the notice waiting for the next page."""

    user_name: str
    csrf_token: str
    created_ms: int
    seen_ms: int
    notice: str = ""


class UserExists(Exception):
    """A user of that name is there already."""


def _user(row) -> UserRow:
    return UserRow(name=row.name, role=row.role, profiles=tuple(p for p in row.profiles.split(",") if p),
                   language=row.language, password_hash=row.password_hash, created_ms=row.created_ms,
                   updated_ms=row.updated_ms)


# -- users -----------------------------------------------------------------------

def user(conn, name: str) -> UserRow | None:
    """The login ``name``, or None."""
    row = conn.execute(sa.select(U).where(U.c.name == name)).first()
    return _user(row) if row is not None else None


def users(conn) -> list[UserRow]:
    """Every login, by name."""
    return [_user(row) for row in conn.execute(sa.select(U).order_by(U.c.name))]


def add_user(conn, new: UserRow, *, now_ms: int, actor: str, source: str = "") -> UserRow:
    """Add ``new`` (its times set to ``now_ms``); raises :class:`UserExists` when the name is taken."""
    if user(conn, new.name) is not None:
        raise UserExists(new.name)
    conn.execute(sa.insert(U).values(name=new.name, role=new.role, profiles=",".join(new.profiles),
                                     language=new.language, password_hash=new.password_hash,
                                     created_ms=now_ms, updated_ms=now_ms))
    _audit.add(conn, _audit.AuditEntry(at_ms=now_ms, actor=actor, action=USER_ADDED, subject=new.name,
                                       source=source, before="no such login", after=new.described()))
    return user(conn, new.name)


def set_password(conn, name: str, password_hash: str, *, now_ms: int, actor: str, source: str = "") -> bool:
    """Give ``name`` a new password and end its sessions; False when there is no such user."""
    old = user(conn, name)
    if old is None:
        return False
    conn.execute(sa.update(U).where(U.c.name == name).values(password_hash=password_hash, updated_ms=now_ms))
    ended = conn.execute(sa.delete(S).where(S.c.user_name == name)).rowcount
    _audit.add(conn, _audit.AuditEntry(at_ms=now_ms, actor=actor, action=USER_PASSWORD, subject=name,
                                       source=source, detail="password changed; its sessions ended",
                                       before=f"password set at {old.updated_ms}; {ended} session(s)",
                                       after=f"password set at {now_ms}; no session"))
    return True


def remove_user(conn, name: str, *, now_ms: int, actor: str, source: str = "") -> bool:
    """Remove ``name`` and its sessions; False when there is no such user."""
    old = user(conn, name)
    if old is None:
        return False
    conn.execute(sa.delete(S).where(S.c.user_name == name))
    conn.execute(sa.delete(U).where(U.c.name == name))
    _audit.add(conn, _audit.AuditEntry(at_ms=now_ms, actor=actor, action=USER_REMOVED, subject=name,
                                       source=source, before=old.described(), after="no such login"))
    return True


# -- sessions --------------------------------------------------------------------

def add_session(conn, id_hash: str, user_name: str, csrf_token: str, *, now_ms: int) -> None:
    """A new session of ``user_name``, seen now."""
    conn.execute(sa.insert(S).values(id_hash=id_hash, user_name=user_name, csrf_token=csrf_token,
                                     created_ms=now_ms, seen_ms=now_ms, notice=""))


def resume_session(conn, id_hash: str, *, now_ms: int, idle_ms: int) -> tuple[SessionRow, UserRow] | None:
    """The live session ``id_hash`` and its user, marked seen now; None (and the row gone) when it was
    idle longer than ``idle_ms`` or its user was removed."""
    row = conn.execute(sa.select(S).where(S.c.id_hash == id_hash)).first()
    if row is None:
        return None
    owner = user(conn, row.user_name)
    if owner is None or now_ms - row.seen_ms > idle_ms:
        conn.execute(sa.delete(S).where(S.c.id_hash == id_hash))
        return None
    conn.execute(sa.update(S).where(S.c.id_hash == id_hash).values(seen_ms=now_ms))
    return SessionRow(row.user_name, row.csrf_token, row.created_ms, now_ms, row.notice), owner


def set_notice(conn, id_hash: str, notice: str) -> None:
    """Keep ``notice`` for the session's next page."""
    conn.execute(sa.update(S).where(S.c.id_hash == id_hash).values(notice=notice))


def take_notice(conn, id_hash: str) -> str:
    """The session's waiting notice, cleared (shown once)."""
    notice = conn.execute(sa.select(S.c.notice).where(S.c.id_hash == id_hash)).scalar() or ""
    if notice:
        conn.execute(sa.update(S).where(S.c.id_hash == id_hash).values(notice=""))
    return notice


def end_session(conn, id_hash: str) -> None:
    """Log out: the session is gone."""
    conn.execute(sa.delete(S).where(S.c.id_hash == id_hash))


def prune_sessions(conn, *, now_ms: int, idle_ms: int) -> int:
    """Remove the sessions idle longer than ``idle_ms``; how many."""
    return conn.execute(sa.delete(S).where(S.c.seen_ms < now_ms - idle_ms)).rowcount


# -- wrong passwords ---------------------------------------------------------------

def _scopes(user_name: str, source: str) -> list[tuple[str, object]]:
    """(subject, where) of the counts a login attempt is in: its name's (none for an empty name) and its
    address's."""
    by_address = (f"address {source}", F.c.source == source)
    return [by_address] if user_name == FORGOTTEN else [(f"user {user_name}", F.c.user_name == user_name), by_address]


def _serialise(conn, subjects: list[str]) -> None:
    """One writer at a time per subject, across nodes (PostgreSQL; held to the end of the transaction)."""
    if conn.dialect.name == "postgresql":
        for subject in sorted(subjects):
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                         {"key": "prepaid portal login " + subject})


def _cleared_ms(conn, since_ms: int, subject: str | None = None) -> dict[str, int]:
    """subject -> when an operator last cleared its lockout (since ``since_ms``)."""
    q = (sa.select(A.c.subject, sa.func.max(A.c.at_ms).label("at_ms"))
         .where(A.c.action == LOGIN_UNLOCK, A.c.at_ms >= since_ms).group_by(A.c.subject))
    if subject is not None:
        q = q.where(A.c.subject == subject)
    return {row.subject: int(row.at_ms) for row in conn.execute(q)}


def _failures_ms(conn, subject: str, where, since_ms: int) -> list[int]:
    """The times of ``subject``'s wrong passwords since ``since_ms`` and since its last clearing."""
    cleared = _cleared_ms(conn, since_ms, subject).get(subject)
    since = since_ms if cleared is None else max(since_ms, cleared + 1)
    return [row.at_ms for row in conn.execute(sa.select(F.c.at_ms).where(where, F.c.at_ms >= since))]


def login_locked(conn, rule: PinRule, user_name: str, source: str, *, now_ms: int) -> bool:
    """Whether logging in as ``user_name`` or from ``source`` is locked at ``now_ms``."""
    since_ms = now_ms - rule.reach_ms()
    return any(rule.locked(_failures_ms(conn, subject, where, since_ms), now_ms)
               for subject, where in _scopes(user_name, source))


def add_login_failure(conn, rule: PinRule, user_name: str, source: str, *, now_ms: int) -> bool:
    """Count a wrong password for ``user_name`` from ``source``; True when logging in is now locked for
    either. The failure that starts a lockout of a subject writes its audit row."""
    scopes = _scopes(user_name, source)
    _serialise(conn, [subject for subject, _ in scopes])
    since_ms = now_ms - rule.reach_ms()
    conn.execute(sa.delete(F).where(F.c.at_ms < since_ms))
    before = {subject: rule.locked(_failures_ms(conn, subject, where, since_ms), now_ms)
              for subject, where in scopes}
    conn.execute(sa.insert(F).values(at_ms=now_ms, user_name=user_name, source=source))
    locked = False
    for subject, where in scopes:
        failures = _failures_ms(conn, subject, where, since_ms)
        now_locked = rule.locked(failures, now_ms)
        locked = locked or now_locked
        if now_locked and not before[subject]:
            _audit.add(conn, _audit.AuditEntry(
                at_ms=now_ms, actor="portal", action=LOGIN_LOCKOUT, subject=subject, source=source,
                detail=f"{rule.max_failures} wrong passwords within {rule.window_s} s: "
                       f"logging in locked for {rule.lockout_s} s",
                before="not locked", after=f"locked until {_utc(rule.locked_until_ms(failures))}"))
    return locked


def clear_login_failures(conn, user_name: str) -> None:
    """A right password: the user name's wrong ones are forgotten, but still count for the addresses they
    came from (a guesser's address stays locked when the user logs in from elsewhere)."""
    conn.execute(sa.update(F).where(F.c.user_name == user_name).values(user_name=FORGOTTEN))


# -- lockouts, as operators see and clear them -------------------------------------

@dataclass(frozen=True)
class Lockout:
    """A subject that may not log in now: ``kind`` (one of :data:`LOCK_KINDS`) and its ``value`` (a user
    name or an address), until when, after how many wrong passwords."""

    kind: str
    value: str
    until_ms: int
    failures: int

    @property
    def subject(self) -> str:
        return f"{self.kind} {self.value}"


def lockouts(conn, rule: PinRule, *, now_ms: int) -> list[Lockout]:
    """Every lockout in force at ``now_ms``, the longest first."""
    since_ms = now_ms - rule.reach_ms()
    cleared = _cleared_ms(conn, since_ms)
    times: dict[tuple[str, str], list[int]] = {}
    for row in conn.execute(sa.select(F.c.at_ms, F.c.user_name, F.c.source).where(F.c.at_ms >= since_ms)):
        for kind, value in (("user", row.user_name), ("address", row.source)):
            if (kind, value) != ("user", FORGOTTEN) and row.at_ms > cleared.get(f"{kind} {value}", since_ms - 1):
                times.setdefault((kind, value), []).append(row.at_ms)
    found = []
    for (kind, value), failures in times.items():
        until = rule.locked_until_ms(failures)
        if until is not None and now_ms < until:
            found.append(Lockout(kind, value, until, len(failures)))
    return sorted(found, key=lambda lock: (-lock.until_ms, lock.kind, lock.value))


def _utc(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def clear_lockout(conn, rule: PinRule, kind: str, value: str, *, now_ms: int, actor: str,
                  source: str = "") -> Lockout | None:
    """End the lockout of ``kind`` ``value`` now, with its audit row (``portal_login_unlock``); the lockout
    that was cleared, or None (and nothing written) when there was none."""
    _serialise(conn, [f"{kind} {value}"])
    lock = next((lock for lock in lockouts(conn, rule, now_ms=now_ms) if (lock.kind, lock.value) == (kind, value)),
                None)
    if lock is None:
        return None
    _audit.add(conn, _audit.AuditEntry(
        at_ms=now_ms, actor=actor, action=LOGIN_UNLOCK, subject=lock.subject, source=source,
        detail=f"cleared by an operator after {lock.failures} wrong passwords",
        before=f"locked until {_utc(lock.until_ms)}", after="not locked"))
    return lock
