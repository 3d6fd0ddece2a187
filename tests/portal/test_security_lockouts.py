"""Brute force against the portal's login: locked per user name and per address (``[portal] login_max_failures``
within ``login_window_s``, for ``login_lockout_s``), the locks listed for operators on /lockouts with until
when, cleared there with an audit row, and none of it visible to a provider. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime
import re
import zoneinfo

import pytest

from billing.db import audit
from tests.conftest import fired

from .money_support import example_config
from .security_support import PASSWORD, make_portal

MAX = 3


@pytest.fixture
def portal(store, store_clock):
    config = example_config()
    config = dataclasses.replace(config, portal=dataclasses.replace(config.portal, login_max_failures=MAX))
    return make_portal(store, store_clock, config)


def guess(portal, name: str, address: str, times: int = 1) -> list[int]:
    browser = portal.browser(address)
    return [browser.login(name, "wrong", advance_s=1.0).status for _ in range(times)]


def rows(page_text: str) -> list[tuple[str, str]]:
    """(kind, name or address) of each row of the lockouts table."""
    return re.findall(r"<tr><td>(User|Address)</td><td>([^<]*)</td>", page_text)


def test_wrong_passwords_for_one_name_from_many_addresses_lock_the_name(portal):
    """MAX wrong passwords for anna, each from another address: anna is locked (the right password from a
    fresh address is refused with the lock note), no address is, and bert still logs in from those."""
    for i in range(MAX):
        guess(portal, "anna", f"192.0.2.{100 + i}")
    refused = portal.browser("203.0.113.1").login("anna", PASSWORD, advance_s=1.0)
    assert refused.status == 401 and "locked" in refused.text
    assert portal.browser("192.0.2.100").login("bert", PASSWORD).status == 303


def test_wrong_passwords_from_one_address_lock_the_address(portal):
    """MAX wrong passwords from one address, each for another name: that address may not log in as anyone
    (olga's right password refused), while olga logs in from elsewhere."""
    for name in ("x1", "x2", "x3"):
        guess(portal, name, "198.51.100.9")
    assert portal.browser("198.51.100.9").login("olga", PASSWORD, advance_s=1.0).status == 401
    assert portal.browser("198.51.100.10").login("olga", PASSWORD).status == 303


def test_operators_see_the_locks_and_clear_one_with_an_audit_row_providers_see_nothing(portal):
    """After MAX wrong passwords for anna from one address, /lockouts lists the user and the address with
    until when (login_lockout_s after the last failure, in Berlin time); a provider gets 404 there and no
    trace of it in their audit log. Olga clears anna's lock: one audit row (who, from where, before: locked
    until, after: not locked), anna logs in from elsewhere at once, the address stays locked; and MAX new
    wrong passwords lock anna again."""
    guess(portal, "anna", "198.51.100.20", MAX)
    olga = portal.logged_in("olga", "192.0.2.50")
    page = olga.get("/lockouts")
    assert page.status == 200 and rows(page.text) == [("Address", "198.51.100.20"), ("User", "anna")]
    until_s = portal.clock.seconds() - 1 + portal.config.portal.login_lockout_s   # the last failure was 1 s ago
    assert page.text.count(_berlin(until_s)) == 2
    bert = portal.logged_in("bert")
    assert bert.get("/lockouts").status == 404
    assert "198.51.100.20" not in bert.get("/p/other/audit").text and "lockout" not in bert.get("/p/other/audit").text
    before = _unlocks(portal)
    cleared = olga.post("/lockouts", {"csrf": olga.csrf("/lockouts"), "kind": "user", "value": "anna"})
    assert cleared.status == 303 and "The lock of User anna is cleared." in olga.get("/lockouts").text
    unlocks = _unlocks(portal)[len(before):]
    assert [(u.actor, u.source, u.subject, u.after) for u in unlocks] == [
        ("portal:olga", "192.0.2.50", "user anna", "not locked")]
    assert unlocks[0].before.startswith("locked until ") and unlocks[0].at_ms == portal.store.now_ms()
    assert rows(olga.get("/lockouts").text) == [("Address", "198.51.100.20")]
    assert portal.browser("203.0.113.2").login("anna", PASSWORD).status == 303
    assert portal.browser("198.51.100.20").login("bert", PASSWORD, advance_s=1.0).status == 401
    guess(portal, "anna", "203.0.113.3", MAX)
    assert ("User", "anna") in rows(olga.get("/lockouts").text)


def test_clearing_a_lock_that_is_not_there_writes_nothing(portal):
    """Clearing a name that is not locked: the notice says so, and no audit row is written."""
    olga = portal.logged_in("olga")
    before = _unlocks(portal)
    olga.post("/lockouts", {"csrf": olga.csrf("/lockouts"), "kind": "user", "value": "anna"})
    assert "was not locked" in olga.get("/lockouts").text and _unlocks(portal) == before


def _unlocks(portal):
    return fired(portal.store.run(audit.entries, action="portal_login_unlock"))


def _berlin(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, zoneinfo.ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d %H:%M")


def test_a_right_password_elsewhere_leaves_the_guessers_address_locked(portal):
    """An address that guessed MAX - 1 of anna's password and one of zed's is locked; anna then logs in
    from her own address (her wrong passwords are forgotten for her name), and the guesser's address stays
    locked: forgetting them for the name does not take them from the address."""
    guess(portal, "anna", "198.51.100.30", MAX - 1)
    guess(portal, "zed", "198.51.100.30")
    assert portal.browser("203.0.113.4").login("anna", PASSWORD).status == 303
    assert portal.browser("198.51.100.30").login("bert", PASSWORD, advance_s=1.0).status == 401
    guess(portal, "anna", "203.0.113.5", MAX - 1)
    assert portal.browser("203.0.113.6").login("anna", PASSWORD).status == 303     # the count began anew


def test_guesses_with_an_empty_name_count_for_the_address_alone(portal):
    """Logins with an empty name (the name under which a right password leaves a user's forgotten failures)
    lock their address after MAX, and no user at all: the lockout rows name the address only."""
    anna_guesser = portal.browser("198.51.100.50")
    for _ in range(MAX - 1):
        anna_guesser.login("anna", "wrong", advance_s=1.0)
    assert portal.browser("203.0.113.8").login("anna", PASSWORD).status == 303      # anna's are forgotten
    guess(portal, "", "198.51.100.51", MAX)
    assert portal.browser("198.51.100.51").login("bert", PASSWORD, advance_s=1.0).status == 401
    subjects = [r.subject for r in fired(portal.store.run(audit.entries, action="portal_login_lockout"))]
    assert subjects == ["address 198.51.100.51"]
