"""CSRF on every form and the life of a session, through the whole portal on SQLite and PostgreSQL.

Every POST form of the portal (each page's, the lockout clearing, logout, login) is sent with the CSRF token
missing, wrong, and another session's: 403 and every table as it was; the same form with its own token is
taken and changes the store (so the 403 is the token's doing). A session id is new at each login (a cookie
set before is not the one after, and no longer works), and after logout and after the idle timeout (the
Clock moved past ``session_idle_s``) the old cookie gets the login page, never a page.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from billing.db import model
from tests.conftest import fired
from webhook.portal import pages

from .security_support import FC_A, NUM_A, NUM_A2, NUM_BOTH, PASSWORD, make_portal, snapshot, token


@pytest.fixture
def portal(store, store_clock):
    return make_portal(store, store_clock)


def lock_mallory(portal) -> None:
    """Lock logging in as mallory and from 198.51.100.7: five wrong passwords, each answered a second later."""
    guesser = portal.browser("198.51.100.7")
    for _ in range(portal.config.portal.login_max_failures):
        assert guesser.login("mallory", "wrong", advance_s=1.0).status == 401


#: (path, form, who): every POST form of the portal, filled in so that with the right token it changes the store
def forms(portal) -> list[tuple[str, dict, str]]:
    return [
        (f"/p/demo/customers/edit?number={quote(NUM_A2)}", {"new": "+4915199999999"}, "anna"),
        (f"/p/demo/customers/edit?number={quote(NUM_BOTH)}", {"new": NUM_A, "merge": "1"}, "anna"),
        ("/p/demo/transactions/new", {"step": "book", "token": token(), "number": NUM_A, "amount": "10",
                                      "kind": "topup"}, "anna"),
        ("/p/demo/transactions/new", {"step": "book", "token": token(), "number": NUM_A, "amount": "1",
                                      "kind": "debit", "note": "refund"}, "anna"),
        ("/p/demo/first-callers", {"action": "remove", "number": FC_A}, "olga"),
        ("/p/demo/first-callers", {"action": "import", "numbers": "+4916077777777"}, "olga"),
        ("/p/demo/apikeys/create", {"name": "new key"}, "anna"),
        ("/p/demo/apikeys/revoke", {"key": portal.demo_key}, "anna"),
        ("/lockouts", {"kind": "user", "value": "mallory"}, "olga"),
        ("/logout", {}, "anna"),
    ]


def test_every_post_route_has_a_form_in_the_table(portal):
    """A new POST page without a row here fails: the table covers every route that takes a POST."""
    posted = {path.split("?")[0].strip("/") for path, _, _ in forms(portal)}
    for route in pages.routes():
        if "POST" in route.methods:
            assert (f"p/demo/{route.path}" if route.profile_scoped else route.path) in posted, route.path


def _sessions(store) -> list[tuple]:
    return fired(store.run(lambda conn: [tuple(r) for r in conn.execute(
        model.portal_sessions.select().with_only_columns(model.portal_sessions.c.id_hash).order_by("id_hash"))]))


def test_a_form_without_its_sessions_token_is_403_and_changes_nothing(portal):
    """Each form with no csrf field, a made-up one, and the token of another live session (the same user's
    in another browser, and another user's): 403, every table and every session as it was."""
    lock_mallory(portal)
    wrong = []
    for path, form, who in forms(portal):
        mine, theirs, same_user = portal.logged_in(who), portal.logged_in("bert"), portal.logged_in(who)
        tokens = {"missing": None, "wrong": "x" * 43, "bert's": theirs.csrf("/p/other/"),
                  "own other browser's": same_user.csrf("/p/demo/")}
        for name, value in tokens.items():
            before, sessions = snapshot(portal.store), _sessions(portal.store)
            answer = mine.post(path, form if value is None else {**form, "csrf": value})
            if answer.status != 403 or snapshot(portal.store) != before or _sessions(portal.store) != sessions:
                wrong.append((path, name, answer.status))
    assert wrong == []


def test_the_same_forms_with_their_own_token_are_taken(portal):
    """The control: each form with its session's token changes the store (logout: ends the session)."""
    lock_mallory(portal)
    for path, form, who in forms(portal):
        browser = portal.logged_in(who)
        before, sessions = snapshot(portal.store), _sessions(portal.store)
        answer = browser.post(path, {**form, "csrf": browser.csrf("/p/demo/")})
        assert answer.status in (200, 303), (path, answer.status)
        assert snapshot(portal.store) != before or _sessions(portal.store) != sessions, path


def test_the_login_form_refuses_another_browsers_login_token(portal):
    """The login form's token is its own cookie's: with another browser's (or none) it is 403 whatever the
    password, and nobody is logged in."""
    mine, theirs = portal.browser(), portal.browser()
    mine.get("/")
    for token_value in (None, theirs.csrf("/")):
        form = {"name": "anna", "password": PASSWORD}
        if token_value is not None:
            form["csrf"] = token_value
        assert mine.post("/login", form).status == 403
    assert "portal_session" not in mine.cookies and _sessions(portal.store) == []


def test_a_session_cookie_set_before_login_is_not_the_one_after(portal):
    """A cookie planted before login (a made-up id, or the id of a live session from another browser) is
    replaced at login by a new id; the planted live session is ended, so its id, sent again from either
    browser, gets the login page."""
    browser = portal.browser()
    browser.cookies["portal_session"] = "planted-by-someone-else"
    browser.login("anna", PASSWORD)
    assert browser.cookies["portal_session"] != "planted-by-someone-else"
    assert browser.get("/p/demo/").status == 200
    elsewhere = portal.logged_in("bert", "203.0.113.5")
    planted = elsewhere.cookies["portal_session"]
    victim = portal.browser()
    login_token = victim.csrf("/")
    victim.cookies["portal_session"] = planted
    assert victim.post("/login", {"csrf": login_token, "name": "anna", "password": PASSWORD}).status == 303
    assert victim.cookies["portal_session"] not in (planted, browser.cookies["portal_session"])
    assert victim.get("/").header("location") == "/p/demo/"
    for b in (elsewhere, victim):
        b.cookies["portal_session"] = planted
        old = b.get("/p/other/")
        assert old.status == 303 and old.header("location") == "/"


def test_after_logout_the_old_cookie_and_its_token_are_refused(portal):
    """After logout the old cookie gets the login page for a page, and a form posted with it and its old
    CSRF token is not taken (sent to the login page) and changes nothing."""
    browser = portal.logged_in("anna")
    cookie, csrf = browser.cookies["portal_session"], browser.csrf("/p/demo/")
    assert browser.post("/logout", {"csrf": csrf}).status == 303
    browser.cookies["portal_session"] = cookie
    before = snapshot(portal.store)
    assert browser.get("/p/demo/customers").header("location") == "/"
    answer = browser.post("/p/demo/apikeys/create", {"csrf": csrf, "name": "after logout"})
    assert answer.status == 303 and answer.header("location") == "/"
    assert snapshot(portal.store) == before and _sessions(portal.store) == []


def test_after_the_idle_timeout_the_old_cookie_is_refused_and_its_row_is_gone(portal):
    """Idle a second longer than session_idle_s (Clock-driven): the cookie gets the login page, its session
    row is deleted, and coming back a moment later does not revive it."""
    idle_s = portal.config.portal.session_idle_s
    browser = portal.logged_in("anna")
    portal.clock.advance(idle_s - 1)
    assert browser.get("/p/demo/").status == 200        # used in time: the idle time starts again
    portal.clock.advance(idle_s + 1)
    gone = browser.get("/p/demo/")
    assert gone.status == 303 and gone.header("location") == "/"
    assert _sessions(portal.store) == []
    portal.clock.advance(1)
    assert browser.get("/p/demo/").status == 303
