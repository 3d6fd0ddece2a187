"""The portal in headless Chromium against a real ``prepaid run``, and its listener kept apart from the public one."""

from __future__ import annotations

import pytest

from .browser import http_status, portal_browser  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser


def test_provider_and_operator_log_in_see_the_layout_and_log_out(portal_browser):
    """A provider logs in and lands on its profile's overview in the layout (brand, its name, logout),
    fits 390 px; logs out, and the old cookie gets the login page. An operator's layout too."""
    b = portal_browser
    b.add_user("anna", "provider", profiles="demo", language="en")
    b.add_user("olga", "operator")
    b.login("anna")
    assert b.driver.current_url == b.base + "/p/demo/", b.driver.page_source + "".join(b.node.output)
    assert b.text(".brand") == "Prepaid portal" and b.text(".user") == "anna"
    assert "demo" in b.text("header.top")
    b.shot("provider")
    cookie = b.driver.get_cookie("portal_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    b.logout()
    assert b.driver.find_elements("css selector", "form.login")
    b.driver.add_cookie({"name": "portal_session", "value": cookie["value"], "path": "/"})
    b.get("/p/demo/")
    assert b.driver.current_url == b.base + "/" and b.driver.find_elements("css selector", "form.login")
    b.login("olga")
    assert b.driver.current_url == b.base + "/p/demo/" and b.text(".user") == "olga"
    assert b.text("form.logout button") == "Abmelden"
    b.shot("operator")
    b.logout()
    b.get("/")
    b.shot("login")


def test_the_portal_port_serves_no_top_up_page_and_the_public_port_no_portal(portal_browser):
    """The portal's listener answers 404 for /topup/demo and /healthz; the public one 404 for / and /p/demo/."""
    b = portal_browser
    assert http_status(b.public + "/topup/demo") == 200
    assert http_status(b.base + "/topup/demo") == 404 and http_status(b.base + "/healthz") == 404
    assert http_status(b.base + "/") == 200
    assert http_status(b.public + "/p/demo/") == 404 and http_status(b.public + "/login") == 404
