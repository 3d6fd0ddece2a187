"""Operator commands on callers' accounts: ``topup``, ``balance``, ``customers``, ``transactions``,
``calls``, ``renumber``, ``adjust`` (forms and ``--json`` fields as the README lists them).

NUMBER may be written in any usual form; output shows E.164. Amounts are in
the currency (``12.50``). Errors go to standard error with a reason: exit 2
for bad input, 1 for an operation the store refused.
"""

from __future__ import annotations

import uuid

from billing.money import BadAmount, format_cents, parse_cents
from billing.db.ledger import DEBIT_KINDS, CREDIT_KINDS

from .db import (CLI_SOURCE, CommandError, add_config_argument, cli_actor, command, fired, iso_ms, number_of,
                 open_store, parse_time_ms, print_json, print_table, profile_of, valid_number_of)

KINDS = sorted(CREDIT_KINDS | DEBIT_KINDS)


def register(sub) -> None:
    """Add the account commands."""
    p = sub.add_parser("topup", help="book a manual top-up (the profile's bonus applies)")
    _common(p, json_flag=True)
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("amount", metavar="AMOUNT", help="in the currency: 10 or 12.50")
    p.add_argument("--note", default="", help="why (kept in the ledger)")
    p.set_defaults(func=command(topup))

    p = sub.add_parser("balance", help="a caller's balance")
    _common(p, json_flag=True)
    p.add_argument("number", metavar="NUMBER")
    p.set_defaults(func=command(balance))

    p = sub.add_parser("customers", help="accounts with balance, number of top-ups and the last top-up")
    _common(p, json_flag=True, profile_required=False)
    p.add_argument("--number", default=None)
    p.set_defaults(func=command(customers))

    p = sub.add_parser("transactions", help="ledger rows, newest first")
    _common(p, json_flag=True, profile_required=False)
    p.add_argument("--number", default=None)
    p.add_argument("--kind", action="append", choices=KINDS, help="only this kind (may repeat)")
    p.add_argument("--since", default=None, help="from this date or time (UTC)")
    p.add_argument("--until", default=None, help="up to this date (inclusive) or time (exclusive), UTC")
    p.add_argument("--limit", type=int, default=None)
    p.set_defaults(func=command(transactions))

    p = sub.add_parser("calls", help="the itemised calls of a caller")
    _common(p, json_flag=True)
    p.add_argument("number", metavar="NUMBER")
    p.set_defaults(func=command(calls))

    p = sub.add_parser("renumber", help="move a caller's account and history to a new number")
    _common(p, json_flag=True)
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    p.add_argument("--merge", action="store_true", help="join into the new number's existing account")
    p.set_defaults(func=command(renumber))

    p = sub.add_parser("adjust", help="credit (or with --debit take) an amount for other services")
    _common(p, json_flag=True)
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("amount", metavar="AMOUNT", help="in the currency: 10 or 12.50")
    p.add_argument("--debit", action="store_true", help="take the amount instead of crediting it")
    p.add_argument("--note", required=True, help="why (kept in the ledger)")
    p.set_defaults(func=command(adjust))


def _common(p, *, json_flag: bool, profile_required: bool = True) -> None:
    add_config_argument(p)
    p.add_argument("--profile", required=profile_required, default=None, help="billing profile")
    if json_flag:
        p.add_argument("--json", action="store_true", help="machine-readable output")


def _amount(text: str) -> int:
    try:
        cents = parse_cents(text)
    except BadAmount as exc:
        raise CommandError(str(exc), code=2) from None
    if cents <= 0:
        raise CommandError(f"the amount must be more than 0: {text!r}", code=2)
    return cents


def _entry_json(e) -> dict:
    return {"id": e.id, "profile": e.profile, "number": e.number, "kind": e.kind, "amount_cents": e.amount_cents,
            "balance_after_cents": e.balance_after_cents, "source": e.source, "external_ref": e.external_ref,
            "actor": e.actor, "note": e.note, "call_session_id": e.call_session_id, "at": iso_ms(e.at_ms),
            "at_ms": e.at_ms}


def topup(args, config) -> int:
    """``prepaid topup``: a manual top-up under a fresh reference; the bonus applies; audited."""
    profile = profile_of(config, args.profile)
    number, cents = valid_number_of(config, args.number), _amount(args.amount)
    result = _book_manual(config, profile, number, cents, kind="topup", note=args.note)
    currency = profile.billing.currency
    bonus = result.bonus_cents
    if args.json:
        print_json({"profile": profile.name, "number": number, "amount_cents": cents, "bonus_cents": bonus,
                    "balance_cents": result.account.balance_cents, "currency": currency,
                    "entries": [_entry_json(e) for e in result.entries]})
    else:
        extra = f" + bonus {format_cents(bonus)}" if bonus else ""
        print(f"{number} ({profile.name}): credited {format_cents(cents)}{extra} {currency}; "
              f"balance {format_cents(result.account.balance_cents)} {currency}")
    return 0


def _book_manual(config, profile, number: str, signed_cents: int, *, kind: str, note: str):
    """Book a manual transaction with its audit row (the operator, from ``cli``), or a CommandError (exit 1)
    saying why not."""
    store = open_store(config)
    try:
        result = fired(store.manual(profile.billing, number, signed_cents, kind=kind,
                                    external_ref=f"manual-{uuid.uuid4()}", actor=cli_actor(),
                                    audit_actor=cli_actor(), address=CLI_SOURCE, note=note))
    finally:
        store.close()
    if not result.applied:
        currency = profile.billing.currency
        if result.reason == "over_limit":
            raise CommandError(f"not booked: {format_cents(abs(signed_cents))} {currency} is more than profile "
                               f"{profile.name} allows for one manual transaction "
                               f"({format_cents(profile.billing.max_manual_cents)} {currency}, key max_manual)")
        if result.reason == "no_account":
            raise CommandError(f"not debited: {number} has no account")
        have = result.account.balance_cents if result.account else 0
        raise CommandError(f"not debited: {number} has only {format_cents(have)} {currency}")
    return result


def balance(args, config) -> int:
    """``prepaid balance``: 0 for a caller without an account."""
    profile = profile_of(config, args.profile)
    number = number_of(config, args.number)
    store = open_store(config)
    try:
        account = fired(store.account(profile.name, number))
    finally:
        store.close()
    cents = account.balance_cents if account else 0
    currency = profile.billing.currency
    if args.json:
        print_json({"profile": profile.name, "number": number, "balance_cents": cents, "currency": currency,
                    "account": account is not None, "pin": account.pin if account else None})
    else:
        suffix = "" if account else " (no account yet)"
        print(f"{number} ({profile.name}): {format_cents(cents)} {currency}{suffix}")
    return 0


def customers(args, config) -> int:
    """``prepaid customers``."""
    profile = profile_of(config, args.profile)
    number = number_of(config, args.number) if args.number else None
    store = open_store(config)
    try:
        rows = fired(store.customers(profile.name if profile else None, number))
    finally:
        store.close()
    if args.json:
        print_json([{"profile": r.profile, "number": r.number, "balance_cents": r.balance_cents,
                     "topups": r.topups, "last_topup_at": iso_ms(r.last_topup_ms)} for r in rows])
    else:
        print_table(("profile", "number", "balance", "top-ups", "last top-up"),
                    [(r.profile, r.number, format_cents(r.balance_cents), r.topups, iso_ms(r.last_topup_ms) or "-")
                     for r in rows], right=(2, 3))
    return 0


def transactions(args, config) -> int:
    """``prepaid transactions``: newest first."""
    profile = profile_of(config, args.profile)
    number = number_of(config, args.number) if args.number else None
    since = parse_time_ms(args.since) if args.since else None
    until = parse_time_ms(args.until, end=True) if args.until else None
    store = open_store(config)
    try:
        entries = fired(store.transactions(profile.name if profile else None, number, kinds=args.kind,
                                           since_ms=since, until_ms=until, limit=args.limit))
    finally:
        store.close()
    if args.json:
        print_json([_entry_json(e) for e in entries])
    else:
        # with --profile every row is that profile's: its column would only take width from the note
        head = ("at",) if profile else ("at", "profile")
        print_table(head + ("number", "kind", "amount", "balance after", "source", "reference", "note"),
                    [(iso_ms(e.at_ms),) + (() if profile else (e.profile,)) +
                     (e.number, e.kind, format_cents(e.amount_cents), format_cents(e.balance_after_cents), e.source,
                      e.external_ref, e.note) for e in entries],
                    right=(len(head) + 2, len(head) + 3))
    return 0


def calls(args, config) -> int:
    """``prepaid calls``: the itemised calls and the balance."""
    profile = profile_of(config, args.profile)
    number = number_of(config, args.number)
    store = open_store(config)
    try:
        records = fired(store.calls(profile.name, number))
        account = fired(store.account(profile.name, number))
    finally:
        store.close()
    if args.json:
        print_json([{"call_id": r.call_id, "service_number": r.service_number, "caller": r.caller,
                     "identity_source": r.identity_source, "privacy": r.privacy, "caller_class": r.caller_class,
                     "agent_tried": r.agent_tried, "agent_answered": r.agent_answered,
                     "invite_at": iso_ms(r.invite_ms), "answer_at": iso_ms(r.answer_ms), "end_at": iso_ms(r.end_ms),
                     "end_reason": r.end_reason, "a_status": r.a_status, "b_status": r.b_status,
                     "billed_s": r.billed_s, "charge_cents": r.charge_cents} for r in records])
        return 0
    cents = account.balance_cents if account else 0
    print(f"{number} ({profile.name}): balance {format_cents(cents)} {profile.billing.currency}, "
          f"{len(records)} call(s)")
    print_table(("start", "service", "class", "answered by", "billed s", "charge", "end reason", "status"),
                [(iso_ms(r.invite_ms), r.service_number, r.caller_class or "-", r.agent_answered or "-", r.billed_s,
                  format_cents(r.charge_cents), r.end_reason or "-", f"{r.a_status or '-'}/{r.b_status or '-'}")
                 for r in records], right=(4, 5))
    return 0


def renumber(args, config) -> int:
    """``prepaid renumber``: exit 1 when the new number has an account and --merge is not given."""
    from billing.store import StoreError
    profile = profile_of(config, args.profile)
    old, new = number_of(config, args.old), valid_number_of(config, args.new)
    store = open_store(config)
    try:
        result = fired(store.renumber(profile.name, old, new, merge=args.merge, actor=cli_actor(),
                                      source=CLI_SOURCE))
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    finally:
        store.close()
    if args.json:
        print_json({"profile": profile.name, "old": old, "number": new, "merged": result.merged,
                    "balance_cents": result.account.balance_cents, "ledger_rows": result.ledger_rows,
                    "call_records": result.call_records})
    else:
        how = "merged into" if result.merged else "moved to"
        print(f"{old} ({profile.name}) {how} {new}: {result.ledger_rows} ledger row(s) moved, "
              f"{result.call_records} call record(s) keep {old}; balance {format_cents(result.account.balance_cents)} "
              f"{profile.billing.currency}")
    return 0


def adjust(args, config) -> int:
    """``prepaid adjust``: a manual credit, or with --debit a debit the balance must cover (else exit 1); audited."""
    profile = profile_of(config, args.profile)
    # a debit may empty an account whatever its number; a credit goes only to a number someone can call from
    number = number_of(config, args.number) if args.debit else valid_number_of(config, args.number)
    cents = _amount(args.amount)
    result = _book_manual(config, profile, number, -cents if args.debit else cents, kind="manual", note=args.note)
    entries = result.entries
    currency = profile.billing.currency
    if args.json:
        print_json({"profile": profile.name, "number": number, "amount_cents": -cents if args.debit else cents,
                    "balance_cents": result.account.balance_cents, "currency": currency,
                    "entries": [_entry_json(e) for e in entries]})
    else:
        verb = "debited" if args.debit else "credited"
        print(f"{number} ({profile.name}): {verb} {format_cents(cents)} {currency}; "
              f"balance {format_cents(result.account.balance_cents)} {currency}")
    return 0
