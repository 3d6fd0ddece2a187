"""The audit log holds one row for every change, whoever made it and wherever: the portal, `prepaid ...` and the
balance API, on SQLite and PostgreSQL.

Each change below is made once, and the rows added by it are exactly one: its action, who (``portal:<login>``,
``operator:<login>`` at the command line, ``api:<key id>``), when, from where (the browser's or the API
client's address, ``cli``) and what was before and after. The changes are the ones the issue lists: top-up,
correction credit and debit, renumber, merge, first caller removed and imported, API key made and revoked,
a portal login added, its password changed and removed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from b2bua.node.cli import main
from billing.db import audit
from tests.conftest import fired

from .security_support import FC_A, NUM_A, NUM_A2, NUM_BOTH, make_portal, token

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def portal(store, store_clock):
    return make_portal(store, store_clock)


class Recorder:
    """Makes a change and hands back the audit rows it added."""

    def __init__(self, store) -> None:
        self.store = store
        self.seen = len(fired(store.run(audit.entries)))

    def added(self, change) -> list[audit.AuditEntry]:
        change()
        rows = fired(self.store.run(audit.entries))
        new, self.seen = rows[self.seen:], len(rows)
        return new


def _check(rows, action: str, actor: str, source: str, when) -> str | None:
    """What is wrong with the rows of one change (None: one row, all of it right)."""
    if len(rows) != 1:
        return f"{len(rows)} rows: {[r.action for r in rows]}"
    row = rows[0]
    if (row.action, row.actor, row.source) != (action, actor, source):
        return f"{row.action} by {row.actor} from {row.source}"
    if not when(row.at_ms) or not row.before or not row.after:
        return f"at {row.at_ms}, before {row.before!r}, after {row.after!r}"
    return None


def test_every_change_in_the_portal_is_one_audit_row(portal):
    """Top-up, credit, debit, renumber, merge, a key made and revoked (anna), a first caller removed and one
    imported (olga): one row each, by portal:<login>, from the browser's address, at the request's time,
    with before and after; the booking's row names the balances."""
    anna, olga = portal.logged_in("anna", "192.0.2.21"), portal.logged_in("olga", "192.0.2.22")
    rec = Recorder(portal.store)

    def post(browser, path, form):
        return lambda: browser.post(path, {**form, "csrf": browser.csrf("/p/demo/")})

    def book(kind, amount, note=""):
        return post(anna, "/p/demo/transactions/new", {"step": "book", "token": token(), "number": NUM_A,
                                                       "amount": amount, "kind": kind, "note": note})
    changes = [
        ("manual_topup", "anna", book("topup", "10")),
        ("manual_credit", "anna", book("credit", "2", "goodwill")),
        ("manual_debit", "anna", book("debit", "1", "refund")),
        ("renumber", "anna", post(anna, f"/p/demo/customers/edit?number={quote(NUM_A2)}", {"new": "+4915199999999"})),
        ("merge", "anna", post(anna, f"/p/demo/customers/edit?number={quote(NUM_BOTH)}", {"new": NUM_A, "merge": "1"})),
        ("first_caller_remove", "olga", post(olga, "/p/demo/first-callers", {"action": "remove", "number": FC_A})),
        ("first_caller_add", "olga", post(olga, "/p/demo/first-callers", {"action": "import",
                                                                          "numbers": "+4916077777777"})),
        ("apikey_create", "anna", post(anna, "/p/demo/apikeys/create", {"name": "shop"})),
        ("apikey_revoke", "anna", post(anna, "/p/demo/apikeys/revoke", {"key": portal.demo_key})),
    ]
    now = portal.store.now_ms()
    wrong = {}
    for action, who, change in changes:
        problem = _check(rec.added(change), action, f"portal:{who}", "192.0.2.21" if who == "anna" else "192.0.2.22",
                         lambda at: at == now)
        if problem:
            wrong[action] = problem
    assert wrong == {}
    topup = fired(portal.store.run(audit.entries, action="manual_topup"))[-1]
    assert (topup.profile, topup.subject, topup.before, topup.after) == ("demo", NUM_A, "2300", "3400")


def test_every_change_at_the_command_line_is_one_audit_row(store, store_url, tmp_path, capsys):
    """prepaid topup, adjust (credit and --debit), renumber (plain and --merge), user add/passwd/remove and
    apikey create/revoke: one row each, by operator:<login>, from "cli", at the time it ran, with before
    and after."""
    config = tmp_path / "prepaid.toml"
    config.write_text((ROOT / "conf" / "prepaid.toml").read_text().replace(
        'url = "sqlite:///../var/prepaid.db"', f"url = {json.dumps(store_url)}"))
    secret = tmp_path / "password"
    secret.write_text("a long enough password\n")
    c = ["--config", str(config)]
    rec = Recorder(store)

    def cli(*argv):
        return lambda: _ran(main([*argv, *c]), capsys)
    changes = [
        ("manual_topup", cli("topup", "--profile", "demo", NUM_A, "10")),
        ("manual_credit", cli("adjust", "--profile", "demo", NUM_A, "2", "--note", "goodwill")),
        ("manual_debit", cli("adjust", "--profile", "demo", NUM_A, "1", "--debit", "--note", "refund")),
        ("manual_topup", cli("topup", "--profile", "demo", NUM_A2, "10")),
        ("renumber", cli("renumber", "--profile", "demo", NUM_A2, "+4915199999999")),
        ("merge", cli("renumber", "--profile", "demo", "+4915199999999", NUM_A, "--merge")),
        ("portal_user_add", cli("user", "add", "carl", "--role", "provider", "--profiles", "demo",
                                "--password-file", str(secret))),
        ("portal_user_passwd", cli("user", "passwd", "carl", "--password-file", str(secret))),
        ("portal_user_remove", cli("user", "remove", "carl")),
        ("apikey_create", cli("apikey", "create", "--provider", "Demo", "--profile", "demo")),
    ]
    wrong = {}
    for action, change in changes:
        start = int(time.time() * 1000)
        rows = rec.added(change)
        end = int(time.time() * 1000)
        problem = _check(rows, action, rows[0].actor if rows else "", "cli", lambda at: start <= at <= end)
        if problem or not rows[0].actor.startswith("operator"):
            wrong[action] = problem or rows[0].actor
    key_id = fired(store.run(audit.entries, action="apikey_create"))[-1].subject
    rows = rec.added(cli("apikey", "revoke", key_id))
    problem = _check(rows, "apikey_revoke", rows[0].actor if rows else "", "cli", lambda at: at > 0)
    assert wrong == {} and problem is None, (wrong, problem)
    assert all(r.actor.startswith("operator") for r in fired(store.run(audit.entries)))


def _ran(code: int, capsys) -> None:
    out = capsys.readouterr()
    assert code == 0, out.err


def test_every_change_through_the_balance_api_is_one_audit_row(store, store_url):
    """A credit, a debit and a renumber through the balance API: one row each, by api:<key id>, from the
    client's address, with the balances (or numbers) before and after."""
    from tests.webhook.harness import Env
    from tests.webhook.test_api import make_key, post

    env = Env(store_url)
    try:
        key, api_token = make_key(env)
        rec = Recorder(store)
        path = f"/api/v1/accounts/demo/{quote(NUM_A)}"
        changes = [
            ("api_credit", lambda: post(env, api_token, path + "/credit", {"amount_cents": 500, "reference": "c1"})),
            ("api_debit", lambda: post(env, api_token, path + "/debit", {"amount_cents": 200, "reference": "d1"})),
            ("renumber", lambda: post(env, api_token, path + "/renumber", {"new_number": "+4915122222222"})),
        ]
        wrong = {}
        for action, change in changes:
            rows = rec.added(lambda: _status_ok(change()))
            problem = _check(rows, action, f"api:{key.id}", "127.0.0.1", lambda at: at > 0)
            if problem:
                wrong[action] = problem
        assert wrong == {}
        renumbered = fired(store.run(audit.entries, action="renumber"))[-1]
        assert (renumbered.before, renumbered.after) == (f"{NUM_A}: 3.00", "+4915122222222: 3.00")
    finally:
        env.close()


def _status_ok(reply) -> None:
    assert reply.status == 200, reply.body
