"""``prepaid user add|passwd|remove|list``: the provider portal's logins (passwords stored as scrypt hashes).

A provider sees only the profiles given with ``--profiles`` (they must be profiles of the config); an
operator sees every profile. Without ``--password-file`` the password is asked for twice on the
terminal. Each change writes an audit row, by ``operator:<the operator's login>`` from ``cli``.
"""

from __future__ import annotations

import getpass
import re

from billing.db import portal as db
from webhook.portal.auth import hash_password
from webhook.portal.view import OPERATOR, PROVIDER

from .db import (CLI_SOURCE, CommandError, add_config_argument, cli_actor, command, fired, iso_ms, open_store,
                 print_json, print_table)

#: a user name: letters, digits and . _ @ - (it is shown in pages and written to the audit log)
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD_CHARS = 10


def register(sub) -> None:
    p = sub.add_parser("user", help="add, change, remove or list provider portal logins")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    a = verbs.add_parser("add", help="a new portal login")
    add_config_argument(a)
    a.add_argument("name", metavar="NAME")
    a.add_argument("--role", required=True, choices=(OPERATOR, PROVIDER))
    a.add_argument("--profiles", default="", help="P1,P2: the profiles a provider sees (profiles of the config)")
    a.add_argument("--language", default="de", choices=("de", "en"))
    a.add_argument("--password-file", default=None, help="read the password from this file (its first line)")
    a.set_defaults(func=command(add))
    pw = verbs.add_parser("passwd", help="a new password (the user's sessions end)")
    add_config_argument(pw)
    pw.add_argument("name", metavar="NAME")
    pw.add_argument("--password-file", default=None, help="read the password from this file (its first line)")
    pw.set_defaults(func=command(passwd))
    rm = verbs.add_parser("remove", help="remove a login and its sessions")
    add_config_argument(rm)
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(func=command(remove))
    ls = verbs.add_parser("list", help="the logins (never their passwords)")
    add_config_argument(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=command(list_users))


def _password(path: str | None) -> str:
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                password = f.readline().rstrip("\r\n")
        except OSError as exc:
            raise CommandError(f"cannot read the password file {path}: {exc.strerror}", 2) from None
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise CommandError("the two passwords differ", 2)
    if len(password) < MIN_PASSWORD_CHARS:
        raise CommandError(f"the password needs at least {MIN_PASSWORD_CHARS} characters", 2)
    return password


def add(args, config) -> int:
    if not _NAME.match(args.name):
        raise CommandError(f"a user name is 1 to 64 letters, digits or . _ @ -, not {args.name!r}", 2)
    profiles = tuple(p for p in (s.strip() for s in args.profiles.split(",")) if p)
    unknown = [p for p in profiles if p not in config.profiles]
    if unknown:
        raise CommandError(f"--profiles: no profile {', '.join(map(repr, unknown))} in {config.path} "
                           f"(it has {', '.join(config.profiles)})", 2)
    if args.role == PROVIDER and not profiles:
        raise CommandError("--profiles: a provider needs at least one profile", 2)
    if args.role == OPERATOR and profiles:
        raise CommandError("--profiles: an operator sees every profile; give none", 2)
    row = db.UserRow(args.name, args.role, profiles, args.language, hash_password(_password(args.password_file)))
    store = open_store(config)
    try:
        fired(store.run(db.add_user, row, now_ms=store.now_ms(), actor=cli_actor(),
                        source=CLI_SOURCE))
    except db.UserExists:
        raise CommandError(f"there is a user {args.name!r} already", 2) from None
    finally:
        store.close()
    print(f"user {args.name} added ({args.role}{': ' + ', '.join(profiles) if profiles else ''})")
    return 0


def passwd(args, config) -> int:
    password_hash = hash_password(_password(args.password_file))
    store = open_store(config)
    try:
        done = fired(store.run(db.set_password, args.name, password_hash, now_ms=store.now_ms(),
                               actor=cli_actor(), source=CLI_SOURCE))
    finally:
        store.close()
    if not done:
        raise CommandError(f"no user {args.name!r}")
    print(f"password of {args.name} changed; its sessions ended")
    return 0


def remove(args, config) -> int:
    store = open_store(config)
    try:
        done = fired(store.run(db.remove_user, args.name, now_ms=store.now_ms(), actor=cli_actor(),
                               source=CLI_SOURCE))
    finally:
        store.close()
    if not done:
        raise CommandError(f"no user {args.name!r}")
    print(f"user {args.name} removed")
    return 0


def list_users(args, config) -> int:
    store = open_store(config)
    try:
        rows = fired(store.run(db.users))
    finally:
        store.close()
    out = [{"name": u.name, "role": u.role, "profiles": list(u.profiles), "language": u.language,
            "created_at": iso_ms(u.created_ms), "updated_at": iso_ms(u.updated_ms)} for u in rows]
    if args.json:
        print_json(out)
    else:
        print_table(("name", "role", "profiles", "language", "updated"),
                    [(u["name"], u["role"], ",".join(u["profiles"]), u["language"], u["updated_at"]) for u in out])
    return 0
