"""The portal's server: logins, lockouts, sessions, CSRF, who sees which profile, headers, and what pages return.

Two tiny pages registered here (not in ``pages.MODULES``) stand in for the real ones.
"""

from __future__ import annotations

import pytest
from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.web.template import tags

from billing.db import audit
from billing.store import Store
from tests.conftest import STORE_EPOCH_S, fired
from webhook.portal.view import Csv, Html, Redirect, Route

from .client import PortalClient, add_user, portal_config, portal_site

PASSWORD = "correct horse"
CALLS: list[str] = []


def hello(ctx):
    return Html("Overview", tags.p(f"profile {ctx.profile.name} of {ctx.user.name}", id="hello"))


async def save(ctx):
    if ctx.method == "POST":
        CALLS.append(ctx.form.get("what", ""))
        return Redirect(ctx.url(), notice="Saved it")
    return Html("Save", tags.form(tags.input(type="hidden", name="csrf", value=ctx.csrf_token),
                                  tags.button("save"), method="post"))


def export(ctx):
    return succeed(Csv("calls demo.csv", [["number", "amount"], ["+4915112345678", "1,99 €"]]))


def boom(ctx):
    raise RuntimeError("secret detail 4711")


def admin(ctx):
    return Html("Admin", tags.p("operators only", id="admin"))


ROUTES = [Route("", hello, nav="test.hello"), Route("save", save, methods=("GET", "POST"), nav="test.save"),
          Route("export", export), Route("boom", boom), Route("admin", admin, nav="test.admin", operator_only=True)]
STRINGS = {"en": {"test.hello": "Hello page", "test.save": "Save page", "test.admin": "Admin page"}}


@pytest.fixture
def portal(tmp_path):
    """A portal on an inline SQLite store, time on a Clock; users anna (provider of demo), olga (operator)."""
    clock = Clock()
    clock.advance(STORE_EPOCH_S)
    store = Store.open(f"sqlite:///{tmp_path}/p.db", clock, inline=True)
    fired(store.upgrade())
    config = portal_config(tmp_path, login_max_failures="3")
    add_user(store, "anna", "provider", ("demo",))
    add_user(store, "olga", "operator")
    site = portal_site(store, config, clock, ROUTES, STRINGS)
    CALLS.clear()
    yield store, clock, site
    store.close()


def client(portal) -> PortalClient:
    store, clock, site = portal
    return PortalClient(site, clock)


def test_login_page_answers_with_the_security_headers(portal):
    """The login page at / and every other answer carry the CSP (frames only from the public listener, for the
    Button page's preview), nosniff, same-origin referrer and no-store."""
    c = client(portal)
    for response in (c.get("/"), c.get("/nowhere")):
        assert response.header("content-security-policy") == \
            "default-src 'self'; frame-src http://127.0.0.1:8080; frame-ancestors 'none'; form-action 'self'"
        assert response.header("x-content-type-options") == "nosniff"
        assert response.header("referrer-policy") == "same-origin"
        assert response.header("cache-control") == "no-store"
    page = c.get("/")
    assert page.status == 200 and 'action="/login"' in page.text and "<script>" not in page.text
    css = c.get("/static/portal.css")
    assert css.status == 200 and css.header("content-type").startswith("text/css")


def test_a_right_password_logs_in_with_a_new_strict_cookie_and_leads_to_the_first_profile(portal):
    """Login answers 303 with an HttpOnly SameSite=Strict cookie (not Secure over plain HTTP); / then
    leads to the provider's profile, whose page is in the layout with the menu and the user's name."""
    c = client(portal)
    answer = c.login("anna", PASSWORD)
    assert answer.status == 303 and answer.header("location") == "/"
    session = [v for v in answer.headers["set-cookie"] if v.startswith("portal_session=")][0]
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/" in session
    assert "Secure" not in session
    assert c.get("/").header("location") == "/p/demo/"
    page = c.get("/p/demo/")
    assert page.status == 200 and 'id="hello">profile demo of anna<' in page.text
    assert "Hello page" in page.text and "Save page" in page.text and "Admin page" not in page.text
    assert "anna" in page.text and 'action="/logout"' in page.text


def test_cookies_are_secure_behind_an_https_proxy(tmp_path, portal):
    """With ``[portal] public_url`` https://, the session cookie is marked Secure."""
    store, clock, _ = portal
    config = portal_config(tmp_path, public_url='"https://portal.example.com"')
    assert config.portal.secure_cookies
    c = PortalClient(portal_site(store, config, clock, ROUTES), clock)
    answer = c.login("anna", PASSWORD)
    assert any(v.startswith("portal_session=") and "Secure" in v for v in answer.headers["set-cookie"])


def test_a_wrong_password_is_answered_a_second_later_and_logs_nobody_in(portal):
    """A wrong password (or an unknown name): nothing until a second has passed, then 401 with the same
    message, and no session cookie."""
    store, clock, site = portal
    c = client(portal)
    token = c.csrf("/")
    with pytest.raises(AssertionError, match="no answer"):
        c.post("/login", {"csrf": token, "name": "anna", "password": "wrong"})
    clock.advance(1.0)
    wrong = c.post("/login", {"csrf": token, "name": "anna", "password": "wrong"}, advance_s=1.0)
    unknown = c.post("/login", {"csrf": token, "name": "nobody", "password": "wrong"}, advance_s=1.0)
    assert wrong.status == unknown.status == 401
    assert "The user name or the password is wrong." in wrong.text and "locked" not in wrong.text
    assert "portal_session" not in c.cookies


def test_repeated_wrong_passwords_lock_the_name_with_an_audit_row(portal):
    """After login_max_failures (3) wrong passwords the right one is refused too, with the same message
    and a note that logging in is locked; the lockout is an audit row; after login_lockout_s it works."""
    store, clock, site = portal
    c = client(portal)
    for _ in range(3):
        assert c.login("anna", "wrong", advance_s=1.0).status == 401
    locked = c.login("anna", PASSWORD, advance_s=1.0)
    assert locked.status == 401 and "The user name or the password is wrong." in locked.text
    assert "logging in is locked for a while" in locked.text
    assert "portal_session" not in c.cookies
    rows = fired(store.run(audit.entries, action="portal_login_lockout"))
    assert {r.subject for r in rows} == {"user anna", "address 192.0.2.10"}
    other = PortalClient(site, clock, address="192.0.2.99")
    assert other.login("anna", PASSWORD, advance_s=1.0).status == 401       # the name is locked anywhere
    assert other.login("olga", PASSWORD).status == 303                      # other names from elsewhere are not
    clock.advance(900)
    assert c.login("anna", PASSWORD).status == 303


def test_a_session_idle_longer_than_session_idle_s_is_gone(portal):
    """Used within 1800 s the session lives on (each use restarts it); idle longer, the next request is
    sent to the login page."""
    store, clock, site = portal
    c = client(portal)
    c.login("anna", PASSWORD)
    clock.advance(1700)
    assert c.get("/p/demo/").status == 200
    clock.advance(1700)
    assert c.get("/p/demo/").status == 200
    clock.advance(1801)
    gone = c.get("/p/demo/")
    assert gone.status == 303 and gone.header("location") == "/"


def test_logout_needs_the_csrf_token_and_then_the_cookie_is_refused(portal):
    """POST /logout without the token is 403 and the session lives; with it, the session is deleted: the
    old cookie, sent again, gets the login page."""
    c = client(portal)
    c.login("anna", PASSWORD)
    old = dict(c.cookies)
    assert c.post("/logout", {}).status == 403
    assert c.get("/p/demo/").status == 200
    answer = c.post("/logout", {"csrf": c.csrf("/p/demo/")})
    assert answer.status == 303 and "portal_session" not in c.cookies
    c.cookies = old
    assert c.get("/p/demo/").status == 303
    assert 'action="/login"' in c.get("/").text


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_a_post_without_the_right_csrf_token_is_403_and_the_page_is_not_called(portal, token):
    """A form posted with the field csrf missing, empty or wrong: 403, and the page never runs."""
    c = client(portal)
    c.login("anna", PASSWORD)
    form = {"what": "x"} if token is None else {"what": "x", "csrf": token}
    assert c.post("/p/demo/save", form).status == 403
    assert CALLS == []


def test_the_login_form_needs_its_own_csrf_token(portal):
    """POST /login without the token of the login cookie is 403, whatever the password."""
    c = client(portal)
    c.get("/")
    assert c.post("/login", {"name": "anna", "password": PASSWORD}).status == 403
    assert "portal_session" not in c.cookies


def test_another_providers_profile_and_operator_pages_are_404_like_an_unknown_url(portal):
    """Anna (demo) gets the very same 404 page for profile other, a profile that does not exist, an
    operator-only page and an unknown path; Olga (operator) sees all of them."""
    c = client(portal)
    c.login("anna", PASSWORD)
    answers = [c.get(p) for p in ("/p/other/", "/p/nonesuch/", "/p/demo/admin", "/p/demo/nonesuch", "/nowhere")]
    assert {a.status for a in answers} == {404}
    assert len({a.body for a in answers}) == 1
    o = client(portal)
    o.login("olga", PASSWORD)
    assert o.get("/").header("location") == "/p/demo/"
    assert 'id="hello">profile other of olga<' in o.get("/p/other/").text
    admin_page = o.get("/p/demo/admin")
    assert admin_page.status == 200 and "Admin page" in admin_page.text
    assert 'href="/p/other/"' in admin_page.text           # the profile picker


def test_a_redirect_is_303_and_its_notice_shows_once(portal):
    """A page's Redirect after a POST: 303 to its location, and its notice on the next page only."""
    c = client(portal)
    c.login("anna", PASSWORD)
    answer = c.post("/p/demo/save", {"csrf": c.csrf("/p/demo/save"), "what": "x"})
    assert answer.status == 303 and answer.header("location") == "/p/demo/"
    assert CALLS == ["x"]
    assert "Saved it" in c.get("/p/demo/").text
    assert "Saved it" not in c.get("/p/demo/").text


def test_a_csv_is_a_utf8_attachment(portal):
    """A page's Csv: text/csv; charset=utf-8, an attachment with a safe file name, ';' between fields."""
    c = client(portal)
    c.login("anna", PASSWORD)
    answer = c.get("/p/demo/export")
    assert answer.status == 200 and answer.header("content-type") == "text/csv; charset=utf-8"
    assert answer.header("content-disposition") == 'attachment; filename="calls_demo.csv"'
    assert answer.body.decode("utf-8-sig") == "number;amount\r\n+4915112345678;1,99 €\r\n"


def test_a_failing_page_is_a_500_without_details_logged_once_with_user_and_path(portal):
    """A page that raises: 500 page that says nothing of the error; one log event with the traceback,
    the user and the path."""
    c = client(portal)
    c.login("anna", PASSWORD)
    events: list = []
    globalLogPublisher.addObserver(events.append)
    try:
        answer = c.get("/p/demo/boom")
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert answer.status == 500 and "4711" not in answer.text and "Traceback" not in answer.text
    failures = [e for e in events if "log_failure" in e]
    assert len(failures) == 1
    assert failures[0]["user"] == "anna" and failures[0]["path"] == "/p/demo/boom"
