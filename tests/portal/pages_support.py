"""What the portal pages' tests share: the example config, a context for a page, its HTML as text."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.defer import ensureDeferred
from twisted.web.template import flattenString

from b2bua.node.config import parse_config
from tests.conftest import fired
from webhook.portal.view import PROVIDER, Html, PortalUser, context_for

EXAMPLE = Path(__file__).resolve().parents[2] / "conf" / "prepaid.toml"


def example_config(extra: str = "", *, demo: str = ""):
    """The Config of conf/prepaid.toml, with ``demo`` keys added to its demo profile and ``extra`` TOML appended."""
    text = EXAMPLE.read_text().replace("[profiles.demo]\n", f"[profiles.demo]\n{demo}", 1)
    return parse_config(text + extra, str(EXAMPLE))


def provider(lang: str = "en", profiles=("demo",)) -> PortalUser:
    return PortalUser("anna", PROVIDER, tuple(profiles), lang)


def call(page, store, config, module, *, lang: str = "en", profile: str = "demo", **kw):
    """``page`` run under a provider's context on an inline store; its result (Html, Csv or Redirect)."""
    ctx = context_for(provider(lang), profile, store, config, strings=module.STRINGS, **kw)
    result = page(ctx)
    if hasattr(result, "__await__"):
        result = ensureDeferred(result)
    return fired(result) if hasattr(result, "addBoth") else result


def html(result) -> str:
    """The body of an Html result, flattened (escaped as the server writes it)."""
    assert isinstance(result, Html), result
    return fired(flattenString(None, result.body)).decode()
