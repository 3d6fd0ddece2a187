"""``prepaid reconcile [--config PATH] [--json]``: settle the calls of nodes that stopped renewing their leases.

Runs once and exits: every open call session whose lease ran out (its node
crashed or was killed) is settled up to its last renewal, and what it reserved
beyond that goes back to the caller. Safe while nodes serve, and on several
machines at once: a session is settled once.
"""

from __future__ import annotations

import time

from .db import CommandError, add_config_argument, command, fired, iso_ms, open_store, print_json, print_table


def register(sub) -> None:
    p = sub.add_parser("reconcile", help="settle the calls of crashed nodes (sessions whose lease ran out)")
    add_config_argument(p)
    p.add_argument("--json", action="store_true", help="a JSON list of the settled sessions")
    p.set_defaults(func=command(reconcile))


def reconcile(args, config) -> int:
    from billing.db.sessions import SqlSessionStore
    from billing.reconcile import reconcile_once

    store = open_store(config)
    try:
        sessions = SqlSessionStore(store, lease_s=config.store.lease_s, actor=f"reconcile:{config.node_id}")
        settled = fired(reconcile_once(sessions, int(time.time() * 1000)))
    except CommandError:
        raise
    except Exception as exc:
        raise CommandError(f"reconciling failed: {exc}") from exc
    finally:
        store.close()
    if args.json:
        print_json([{"session_id": s.session_id, "call_id": s.call_id, "profile": s.profile, "number": s.number,
                     "charge_cents": s.charge_cents, "refund_cents": s.refund_cents, "billed_s": s.billed_s,
                     "balance_cents": s.balance_cents, "settled_at": iso_ms(s.settled_ms)} for s in settled])
        return 0
    print(f"{len(settled)} call session(s) settled")
    if settled:
        print_table(("session", "profile", "number", "billed_s", "charge_cents", "refund_cents", "balance_cents"),
                    [(s.session_id, s.profile, s.number, s.billed_s, s.charge_cents, s.refund_cents,
                      s.balance_cents) for s in settled], right=(3, 4, 5, 6))
    return 0
