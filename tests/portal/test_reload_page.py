"""The portal's "Reload config": operators reload from a button (CSRF-checked, audited) and see the outcome and
the new load time; providers find neither the page nor the action."""

from __future__ import annotations

import html
import shutil

import pytest
from twisted.internet.task import Clock

from b2bua.node.config import load_config
from b2bua.node.reload import ConfigHolder
from b2bua.node.snapshot import take_snapshot
from billing.db import audit
from billing.store import Store
from tests.conftest import STORE_EPOCH_S, fired
from webhook.portal import pages
from webhook.portal.pages import reload

from webhook.portal.server import build_portal_site

from .client import PortalClient, add_user

PASSWORD = "correct horse"


@pytest.fixture
def portal(tmp_path):
    """The portal's real pages plus the reload page bound to a holder of a config file in ``tmp_path``; time on
    a Clock at 2026-11-01 00:00 UTC; users anna (provider of demo) and olga (operator)."""
    clock = Clock()
    clock.advance(STORE_EPOCH_S)
    path = tmp_path / "prepaid.toml"
    shutil.copy("conf/prepaid.toml", path)
    holder = ConfigHolder(take_snapshot(load_config(str(path)), now_ms=int(clock.seconds() * 1000), environ={}),
                          clock=clock, environ={})
    store = Store.open(f"sqlite:///{tmp_path}/p.db", clock, inline=True)
    fired(store.upgrade())
    add_user(store, "anna", "provider", ("demo",))
    add_user(store, "olga", "operator")
    routes = pages.routes() + reload.routes_for(holder.reload, lambda: holder.snapshot.loaded_ms)
    site = build_portal_site(store, lambda: holder.current, clock, routes=routes)
    yield store, clock, site, holder, path
    store.close()


def logged_in(portal, name: str) -> PortalClient:
    store, clock, site, *_ = portal
    browser = PortalClient(site, clock)
    assert browser.login(name, PASSWORD).status == 303
    return browser


def test_an_operator_reloads_and_sees_the_new_load_time_with_an_audit_row(portal):
    """GET shows when the config was loaded; POST with the CSRF token puts the edited tariff in force,
    answers "in force" with the reload's time, and writes one audit row (who, from where, what)."""
    store, clock, site, holder, path = portal
    olga = logged_in(portal, "olga")
    page = olga.get("/reload")
    assert page.status == 200 and "Config loaded: 2026-11-01 01:00" in page.text
    assert 'href="/reload"' in page.text
    path.write_text(path.read_text().replace('"1.99"', '"2.09"'))
    clock.advance(600)
    done = olga.post("/reload", {"csrf": olga.csrf("/reload")})
    assert done.status == 200, done.text
    assert "The new config is in force." in done.text and "Config loaded: 2026-11-01 01:10" in done.text
    assert str(holder.current.profiles["demo"].billing.landline_per_minute) == "2.09"
    rows = fired(store.run(audit.entries, action="config_reload"))
    assert [(r.actor, r.source, r.detail) for r in rows] == [("portal:olga", "192.0.2.10", "applied")]


def test_a_refused_reload_shows_every_problem_and_keeps_the_config(portal):
    """A file with an error: 422, the problem as file:key: reason, the old tariff and load time stay, and the
    audit row says it was refused and why."""
    store, clock, site, holder, path = portal
    olga = logged_in(portal, "olga")
    path.write_text(path.read_text().replace('"1.99"', '"one"'))
    clock.advance(60)
    done = olga.post("/reload", {"csrf": olga.csrf("/reload")})
    problem = f"{path}:profiles.demo.landline_per_minute: not a decimal number: 'one'"
    assert done.status == 422
    assert problem in html.unescape(done.text)
    assert "Config loaded: 2026-11-01 01:00" in done.text
    assert str(holder.current.profiles["demo"].billing.landline_per_minute) == "1.99"
    (row,) = fired(store.run(audit.entries, action="config_reload"))
    assert row.detail == f"refused: {problem}"


def test_restart_only_changes_are_listed_on_the_result(portal):
    """A reload that changes the HTTP port says the port waits for a restart."""
    store, clock, site, holder, path = portal
    olga = logged_in(portal, "olga")
    path.write_text(path.read_text().replace("port = 8080", "port = 8181"))
    done = olga.post("/reload", {"csrf": olga.csrf("/reload")})
    assert done.status == 200 and "applied only after a restart" in done.text and "http.port" in done.text
    assert holder.current.http.port == 8080


def test_without_the_csrf_token_nothing_is_reloaded(portal):
    """A POST without the session's CSRF token is 403: the edited file is not read and no row is written."""
    store, clock, site, holder, path = portal
    olga = logged_in(portal, "olga")
    before = holder.snapshot
    path.write_text(path.read_text().replace('"1.99"', '"2.09"'))
    assert olga.post("/reload", {"csrf": "forged"}).status == 403
    assert holder.snapshot is before
    assert fired(store.run(audit.entries, action="config_reload")) == []


def test_providers_neither_see_nor_use_it(portal):
    """A provider gets the 404 page for GET and for a CSRF-correct POST, and no menu entry; nothing reloads."""
    store, clock, site, holder, path = portal
    anna = logged_in(portal, "anna")
    before = holder.snapshot
    assert 'href="/reload"' not in anna.get("/p/demo/").text
    assert anna.get("/reload").status == 404
    assert anna.post("/reload", {"csrf": anna.csrf("/p/demo/")}).status == 404
    assert holder.snapshot is before
