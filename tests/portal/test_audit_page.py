"""The portal's audit log on a real store (SQLite and PostgreSQL): scoped rows, filters, paging, escaping."""

from __future__ import annotations

from billing.db import audit
from tests.conftest import fired
from webhook.portal.pages import audit as page
from webhook.portal.view import OPERATOR, PortalUser

from .pagekit import NOW_MS, config, context, render

DAY_MS = 86_400_000


def add(store, **kw):
    kw.setdefault("at_ms", NOW_MS)
    kw.setdefault("actor", "portal:anna")
    kw.setdefault("action", "renumber")
    fired(store.run(audit.add, audit.AuditEntry(**kw)))


def test_a_profiles_log_shows_its_rows_only_newest_first(store):
    """demo's log shows demo's rows (who, from where, before/after), newest first; not other's, nor rows of no
    profile; it has no form that POSTs."""
    add(store, profile="demo", subject="+4915100000001", source="192.0.2.7", before="a: 1.00", after="b: 1.00")
    add(store, profile="demo", subject="+4915100000002", at_ms=NOW_MS + 1000)
    add(store, profile="other", subject="+4915199999999")
    add(store, profile="", action="user_add", subject="bob")
    _, html = render(page.profile_log, context(store, config()))
    assert html.index("+4915100000002") < html.index("+4915100000001")
    assert "192.0.2.7" in html and "a: 1.00" in html and "portal:anna" in html
    assert "+4915199999999" not in html and "bob" not in html
    assert 'method="post"' not in html and "<thead>" in html


def test_the_operators_log_shows_every_row_also_without_profile(store):
    """/audit (operators) lists rows of every profile and of none, with a profile column."""
    add(store, profile="other", subject="+4915199999999")
    add(store, profile="", action="user_add", subject="bob")
    ctx = context(store, config(), profile=None, user=PortalUser("olga", OPERATOR))
    _, html = render(page.operator_log, ctx)
    assert "+4915199999999" in html and "bob" in html and "Profil" in html and 'action="/audit"' in html


def test_filters_by_action_and_day_and_pages(store):
    """?action= keeps that action; from/to are whole days in Berlin; 55 rows make two pages."""
    add(store, profile="demo", action="merge", subject="M")
    add(store, profile="demo", action="renumber", subject="R-old", at_ms=NOW_MS - 3 * DAY_MS)
    _, html = render(page.profile_log, context(store, config(), query={"action": "merge"}))
    assert ">M<" in html and "R-old" not in html and '<option value="merge" selected="selected">' in html
    _, html = render(page.profile_log, context(store, config(), query={"from": "2026-11-01", "to": "2026-11-01"}))
    assert ">M<" in html and "R-old" not in html
    for i in range(53):
        add(store, profile="demo", subject=f"S{i:02d}", at_ms=NOW_MS - DAY_MS - i)
    _, html = render(page.profile_log, context(store, config()))
    assert "Seite 1 von 2" in html and "page=2" in html
    _, html = render(page.profile_log, context(store, config(), query={"page": "2"}))
    assert html.count("<tr>") == 1 + 5 and "R-old" in html


def test_html_in_a_row_is_escaped(store):
    """A subject or note with markup is shown as text."""
    add(store, profile="demo", subject="<img src=x>", detail="<b>note</b>")
    _, html = render(page.profile_log, context(store, config()))
    assert "<img" not in html and "&lt;img src=x&gt;" in html and "&lt;b&gt;note" in html
