"""What the portal's security tests share: the whole portal (every real page) on the store fixture (SQLite and
PostgreSQL), time on the store's Clock, logins for a provider of each profile and an operator, two profiles'
worth of data, and a snapshot of the tables a change would touch.

Profile ``demo`` is provider Anna's, ``other`` is Bert's (the same provider company, so a statement "of the
provider" is the case that could sum them up); Olga is an operator. Everything of ``other`` that a page
could show carries a mark (:data:`OTHER_MARKS`) that must never appear in an answer to Anna.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from unittest import mock

import sqlalchemy as sa

from billing.db import calls as db_calls
from billing.db import model
from billing.db import portal as db
from billing.db.rows import CallRecord
from tests.conftest import fired
from webhook import apikeys
from webhook.portal import auth
from webhook.portal.server import build_portal_site

from .client import PortalClient
from .money_support import example_config

PASSWORD = "correct horse"
#: demo's caller; other's callers (one has an account in both profiles, one only in other)
NUM_A = "+4915112345678"
NUM_A2 = "+4915112340000"
NUM_BOTH = "+4917011111111"
NUM_B = "+4917612345678"
#: on each profile's first-caller list
FC_A = "+4916011111111"
FC_B = "+4916099999999"
OTHER_NOTE = "note-of-other-7731"
OTHER_KEY_NAME = "key-of-other-5522"
#: what of profile other's may be in an answer to anyone but its own provider and the operators: nothing
OTHER_MARKS = (NUM_B, "0176 12345678", "17612345678", FC_B, "16099999999", OTHER_NOTE, OTHER_KEY_NAME,
               "+493012345670", "4242,00", "4.242,00", "€4,242.00")

#: the tables a portal request could change (the sessions' ``seen_ms`` moves with every request: not here)
WATCHED = ("accounts", "ledger", "call_records", "first_callers", "api_keys", "audit", "portal_users",
           "shortfalls", "call_sessions")


def cheap_hash(password: str) -> str:
    """A hash as :func:`webhook.portal.auth.hash_password` writes it, at a test's cost (scrypt N = 2**10): the
    stored hash carries its parameters, so a login checks it the same way, in a millisecond."""
    with mock.patch.object(auth, "SCRYPT_N", 2 ** 10):
        return auth.hash_password(password)


def add_login(store, name: str, role: str, profiles: tuple[str, ...] = (), language: str = "en") -> None:
    fired(store.run(db.add_user, db.UserRow(name, role, profiles, language, cheap_hash(PASSWORD)),
                    now_ms=store.now_ms(), actor="test"))


def snapshot(store) -> dict[str, list[tuple]]:
    """Every row of :data:`WATCHED`, in key order: equal snapshots, nothing changed."""
    def thd(conn):
        out = {}
        for name in WATCHED:
            table = model.metadata.tables[name]
            out[name] = [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
        return out
    return fired(store.run(thd))


def call_record(profile: str, caller: str, invite_ms: int, *, reason: str = "no_credit", received: str | None = None):
    return CallRecord(call_id=f"{profile}-{caller}-{invite_ms}", profile=profile,
                      service_number="+493012345678" if profile == "demo" else "+493012345670", caller=caller,
                      identity_source="from", privacy=False, caller_class="mobile", agent_tried=None,
                      agent_answered=None, invite_ms=invite_ms, answer_ms=None, end_ms=invite_ms + 3000,
                      end_reason=reason, a_status=402, b_status=None, caller_received=received or caller)


@dataclass
class Portal:
    """The portal under test and what the fixture put in its store."""

    store: object
    clock: object
    config: object
    site: object
    demo_key: str
    other_key: str

    def browser(self, address: str = "192.0.2.10") -> PortalClient:
        return PortalClient(self.site, self.clock, address=address)

    def logged_in(self, name: str, address: str = "192.0.2.10") -> PortalClient:
        browser = self.browser(address)
        answer = browser.login(name, PASSWORD)
        assert answer.status == 303, (name, answer.status)
        return browser


def make_portal(store, clock, config=None) -> Portal:
    """The real portal (every page) over ``store``, with logins anna (demo), bert (other), olga (operator),
    and for each profile: accounts, top-ups with notes, a refused call, a first caller, an API key."""
    config = config or example_config()
    add_login(store, "anna", "provider", ("demo",))
    add_login(store, "bert", "provider", ("other",))
    add_login(store, "olga", "operator")
    demo, other = config.profiles["demo"].billing, config.profiles["other"].billing
    fired(store.topup(demo, NUM_A, 2000, source="paypal", external_ref="a1", actor="test", note="note-of-demo"))
    fired(store.topup(demo, NUM_A2, 1000, source="paypal", external_ref="a2", actor="test"))
    fired(store.topup(demo, NUM_BOTH, 1000, source="paypal", external_ref="a3", actor="test"))
    fired(store.topup(other, NUM_B, 424200, source="paypal", external_ref="b1", actor="test", note=OTHER_NOTE))
    fired(store.topup(other, NUM_BOTH, 424200, source="klarna", external_ref="b2", actor="test", note=OTHER_NOTE))
    now = store.now_ms()
    fired(store.run(db_calls.add_many, (call_record("demo", NUM_A, now - 60_000),
                                        call_record("other", NUM_B, now - 50_000),
                                        call_record("other", NUM_BOTH, now - 40_000, received=NUM_B))))
    fired(store.add_first_callers("demo", [FC_A], actor="test"))
    fired(store.add_first_callers("other", [FC_B], actor="test"))
    demo_key, _ = fired(store.run(apikeys.create, "Demo Beratung GmbH", ("demo",), now, name="key-of-demo"))
    other_key, _ = fired(store.run(apikeys.create, "Demo Beratung GmbH", ("other",), now, name=OTHER_KEY_NAME))
    site = build_portal_site(store, lambda: config, clock)
    return Portal(store, clock, config, site, demo_key.id, other_key.id)


def token() -> str:
    """A one-time token of the new-transaction form."""
    return secrets.token_hex(16)
