"""``prepaid statement --profile P|--provider NAME --month 2026-11 [--format table|csv|json]``:
the monthly settlement (``billing.settlement``) of one profile, or of every profile of one provider; the month
begins and ends in each profile's ``timezone``, as on the portal's statements page."""

from __future__ import annotations

import sys

from billing.settlement import build_statement, month_bounds_ms, to_csv, to_json, to_table

from .db import CommandError, add_config_argument, command, fired, open_store, profile_of


def register(sub) -> None:
    """Add ``prepaid statement``."""
    p = sub.add_parser("statement", help="the monthly settlement of a profile or a provider")
    add_config_argument(p)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--profile", default=None, help="one billing profile")
    who.add_argument("--provider", default=None, help="every profile whose provider is NAME")
    p.add_argument("--month", required=True, help="YYYY-MM, in each profile's time zone (its key timezone)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=command(statement))


def statement(args, config) -> int:
    """``prepaid statement``: one profile, or every profile of a provider."""
    try:
        month_bounds_ms(args.month, "UTC")           # only checks the text: each profile has its zone
    except ValueError as exc:
        raise CommandError(str(exc), code=2) from None
    if args.profile:
        profiles = [profile_of(config, args.profile).billing]
        title = args.profile
    else:
        profiles = [p.billing for p in config.profiles.values() if p.billing.provider == args.provider]
        if not profiles:
            known = sorted({p.billing.provider for p in config.profiles.values()})
            raise CommandError(f"no profile has provider {args.provider!r} (providers: {', '.join(known)})", code=2)
        title = args.provider
    store = open_store(config)
    try:
        st = fired(store.run(build_statement, profiles, args.month, title=title))
    except ValueError as exc:
        raise CommandError(str(exc), code=2) from None
    finally:
        store.close()
    text = {"table": to_table, "csv": to_csv, "json": to_json}[args.format](st)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
