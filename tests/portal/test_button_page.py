"""The portal's "Button": the snippet of ``prepaid button`` to copy, a live preview, the sites allowed."""

from __future__ import annotations

import dataclasses
import html as htmllib

from webhook.embed import snippet
from webhook.portal.pages import button

from .pages_support import call, example_config, html


def page(config, lang="en"):
    return call(button.button_page, None, config, button, lang=lang)


def test_the_snippet_to_copy_the_preview_and_the_allowed_sites():
    """The textarea holds exactly the CLI's snippet (escaped once in the page), read-only, with a copy button
    that names it by data-copy; the preview frames the public top-up page; frame_ancestors are listed."""
    config = example_config()
    text = html(page(config))
    code = snippet("http://127.0.0.1:8080", "demo", "de", "Top up credit")
    assert f'readonly="readonly">{htmllib.escape(code, quote=False)}</textarea>' in text.replace("&quot;", '"')
    assert 'data-copy="button-snippet"' in text and 'id="button-snippet"' in text
    assert '<iframe src="http://127.0.0.1:8080/topup/demo?lang=de"' in text
    assert "<li>http://127.0.0.1:8081</li>" in text and "<script" not in text
    page_itself = text.partition("</textarea>")[2]          # the snippet for the provider's site may style itself
    assert 'class="preview"' in page_itself and "style=" not in page_itself   # the CSP drops inline styles


def test_no_allowed_site_and_no_public_url_are_said():
    """A profile framed nowhere says so; without [http] public_url there is no snippet, and the page says why."""
    config = example_config()
    demo = dataclasses.replace(config.profiles["demo"], frame_ancestors=())
    config = dataclasses.replace(config, profiles={"demo": demo},
                                 http=dataclasses.replace(config.http, public_url=""))
    text = html(page(config))
    assert "browsers show the button on no website" in text and "public_url" in text and "<iframe" not in text


def test_the_portal_may_frame_the_public_top_up_page_and_nothing_else():
    """The portal's CSP names the public listener's origin (of ``[http] public_url``, path dropped) in
    frame-src, so the preview loads in a browser; without a public URL nothing may be framed but the portal."""
    from webhook.portal.server import content_security_policy
    assert content_security_policy("https://pay.example.com/prepaid") == (
        "default-src 'self'; frame-src https://pay.example.com; frame-ancestors 'none'; form-action 'self'")
    assert content_security_policy("") == "default-src 'self'; frame-ancestors 'none'; form-action 'self'"


def test_the_page_says_when_the_portal_may_not_frame_the_preview():
    """The example allows only http://127.0.0.1:8081 to frame the button, not the portal itself
    (http://127.0.0.1:8090), so the page says why the preview shows the browser's refusal; with the portal's
    origin allowed (its public_url's, when set) it says nothing."""
    config = example_config()
    assert "The preview shows only when the portal (http://127.0.0.1:8090) is among" in html(page(config))
    demo = dataclasses.replace(config.profiles["demo"], frame_ancestors=("https://portal.example.com",))
    behind_proxy = dataclasses.replace(config, profiles={"demo": demo},
                                       portal=dataclasses.replace(config.portal,
                                                                  public_url="https://portal.example.com/"))
    assert "The preview shows only" not in html(page(behind_proxy))
