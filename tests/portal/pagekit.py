"""What the portal pages' tests share: the example config with a second profile, a context, a rendered page."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.defer import ensureDeferred
from twisted.web.template import flattenString

from b2bua.node.config import parse_config
from tests.conftest import STORE_EPOCH_S, fired
from webhook.portal import pages
from webhook.portal.view import Html, PortalUser, PROVIDER, context_for

ROOT = Path(__file__).resolve().parents[2]
#: the store fixture's clock: 2026-11-01 00:00 UTC (01:00 in Berlin)
NOW_MS = STORE_EPOCH_S * 1000
PROVIDER_USER = PortalUser("anna", PROVIDER, ("demo",), "de")


def config():
    """conf/prepaid.toml with a second profile ``other`` (its own service number and button)."""
    text = (ROOT / "conf" / "prepaid.toml").read_text()
    demo = text[text.index("[profiles.demo]"):]
    other = (demo.replace("profiles.demo", "profiles.other").replace("+493012345678", "+493087654321")
             .replace('button = "demo"', 'button = "other"').replace('"demo-', '"other-'))
    return parse_config(text + "\n" + other, "prepaid.toml")


def context(store, cfg, profile="demo", user=PROVIDER_USER, **kw):
    """A page context as the server makes it, with every page's texts."""
    kw.setdefault("now_ms", NOW_MS)
    return context_for(user, profile, store, cfg, strings=pages.strings(), **kw)


def render(page, ctx):
    """(the page's answer, its body flattened to HTML text when it is an Html)."""
    result = fired(ensureDeferred(page(ctx)))
    if not isinstance(result, Html):
        return result, ""
    return result, fired(flattenString(None, result.body)).decode("utf-8")
