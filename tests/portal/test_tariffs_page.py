"""The portal's "Tariffs and settings": the profile's config in force, read-only, in the user's language."""

from __future__ import annotations

from webhook.portal.pages import tariffs

from .pages_support import call, example_config, html

FIRST_CALLER = """
first_caller_per_minute = "0.495"
first_caller_period_s = 300
"""


def page(config, lang="en", store=None):
    return call(tariffs.tariffs_page, store, config, tariffs, lang=lang)


def test_the_example_profiles_tariffs_and_settings():
    """conf/prepaid.toml's demo profile: 1.99 landline, 2.49 mobile, 60/60 from the answer, warning at 120 s,
    10/20/50 EUR with 1/3/10 EUR bonus, its service number and agent; no first-caller tariff; the load time
    "—" while the server gives none."""
    result = page(example_config())
    text = html(result)
    assert result.title == "Tariffs and settings"
    for expected in ("€1.99 a minute", "€2.49 a minute", "60 s, then every 60 s", "when the agent answers",
                     "120 s before the credit ends", "<td>€10.00</td><td>€1.00</td>",
                     "<td>€50.00</td><td>€10.00</td>", "+493012345678", "sip:agent@127.0.0.1:5070",
                     "Config loaded: —"):
        assert expected in text, expected
    assert "<th>First callers</th><td>—</td>" in text


def test_a_first_caller_tariff_is_shown_exactly_and_in_german():
    """A first-caller tariff of 0.495 for 5 minutes is shown to the tenth of a cent, the German way."""
    text = html(page(example_config(demo=FIRST_CALLER), "de"))
    assert "0,495 € pro Minute, die ersten 5 min" in text and "1,99 € pro Minute" in text
    assert "wenn der Berater annimmt" in text


def test_the_page_shows_when_the_node_loaded_its_config_and_a_reload_changes_it(tmp_path):
    """The node stamps the config's load time (its reactor's clock) at start and again at each reload that
    takes effect; the portal's tariffs page, served by the node's wiring, shows that time in the profile's
    zone (2026-11-01 01:00 in Berlin, then 01:25 after a reload 25 min later). A refused reload keeps it."""
    from twisted.internet.task import Clock

    from b2bua.node.app import Node
    from b2bua.node.config import load_config
    from billing.store import Store
    from tests.conftest import STORE_EPOCH_S, fired
    from webhook.portal.server import build_portal_site

    from .client import PortalClient, add_user

    path = tmp_path / "prepaid.toml"
    path.write_text(open("conf/prepaid.toml", encoding="utf-8").read())
    clock = Clock()
    clock.advance(STORE_EPOCH_S)
    node = Node(load_config(str(path)), clock)
    store = Store.open(f"sqlite:///{tmp_path}/p.db", clock, inline=True)
    try:
        fired(store.upgrade())
        add_user(store, "olga", "operator")
        site = build_portal_site(store, lambda: node.config, clock, config_loaded_ms=lambda: node.holder.snapshot.loaded_ms)
        browser = PortalClient(site, clock)
        assert browser.login("olga", "correct horse").status == 303
        assert "Config loaded: 2026-11-01 01:00" in browser.get("/p/demo/tariffs").text
        clock.advance(1500)
        assert node.holder.reload().applied
        assert "Config loaded: 2026-11-01 01:25" in browser.get("/p/demo/tariffs").text
        clock.advance(600)
        path.write_text("[sip]\nport = -1\n")
        assert not node.holder.reload().applied
        assert "Config loaded: 2026-11-01 01:25" in browser.get("/p/demo/tariffs").text
    finally:
        store.close()
