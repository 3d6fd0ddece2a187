"""``prepaid apikey create|revoke|list``: keys of the balance API (the token is shown once, stored hashed)."""

from __future__ import annotations

from webhook import apikeys

from .db import (CLI_SOURCE, CommandError, add_config_argument, cli_actor, command, fired, iso_ms, open_store,
                 print_json, print_table)


def register(sub) -> None:
    p = sub.add_parser("apikey", help="create, revoke or list balance API keys")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    c = verbs.add_parser("create", help="a new key for a provider, limited to profiles; prints the token once")
    add_config_argument(c)
    c.add_argument("--provider", required=True, help="who the key is for")
    c.add_argument("--profile", action="append", required=True, help="a profile the key may use (may repeat)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=command(create))
    r = verbs.add_parser("revoke", help="revoke a key by its id")
    add_config_argument(r)
    r.add_argument("key_id", metavar="KEY_ID")
    r.set_defaults(func=command(revoke))
    ls = verbs.add_parser("list", help="the keys (never their tokens)")
    add_config_argument(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=command(list_keys))


def create(args, config) -> int:
    for name in args.profile:
        if name not in config.profiles:
            raise CommandError(f"no profile {name!r} in {config.path}", 2)
    store = open_store(config)
    try:
        key, token = fired(store.run(apikeys.create, args.provider, tuple(args.profile), store.now_ms(),
                                     actor=cli_actor(), source=CLI_SOURCE))
    finally:
        store.close()
    if args.json:
        print_json({"id": key.id, "provider": key.provider, "profiles": list(key.profiles), "token": token})
    else:
        print(f"key {key.id} for {key.provider} ({', '.join(key.profiles)})")
        print(f"token (shown once, give it to the provider): {token}")
    return 0


def revoke(args, config) -> int:
    store = open_store(config)
    try:
        done = fired(store.run(apikeys.revoke, args.key_id, store.now_ms(), actor=cli_actor(),
                               source=CLI_SOURCE))
    finally:
        store.close()
    if not done:
        raise CommandError(f"no live key {args.key_id!r}")
    print(f"key {args.key_id} revoked")
    return 0


def list_keys(args, config) -> int:
    store = open_store(config)
    try:
        keys = fired(store.run(apikeys.list_keys))
    finally:
        store.close()
    rows = [{"id": k.id, "provider": k.provider, "profiles": list(k.profiles), "created_at": iso_ms(k.created_ms),
             "revoked_at": iso_ms(k.revoked_ms)} for k in keys]
    if args.json:
        print_json(rows)
    else:
        print_table(("id", "provider", "profiles", "created", "revoked"),
                    [(r["id"], r["provider"], ",".join(r["profiles"]), r["created_at"], r["revoked_at"] or "")
                     for r in rows])
    return 0
