"""The portal's "Button": the iframe snippet that puts the profile's top-up page on the provider's website.

The snippet is ``prepaid button``'s (:func:`webhook.embed.snippet`), in a read-only textarea with a
copy button that works without script (select the text, copy it) and carries ``data-copy`` for the
portal's small script; beside it the page itself in an iframe, and the sites allowed to frame it
(``frame_ancestors``): on any other site browsers refuse to show it, the portal's own included, so the
page says so when the portal's origin is not among them (the preview would show the browser's refusal).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from twisted.web.template import tags

from ...embed import snippet, topup_url
from ..view import Html, PortalContext, Route

STRINGS = {
    "de": {
        "button.nav": "Button", "button.title": "Aufladebutton",
        "button.snippet": "Diesen HTML-Code in die eigene Website einfügen:", "button.copy": "Kopieren",
        "button.preview": "Vorschau", "button.allowed": "Websites, auf denen der Button erscheinen darf:",
        "button.none_allowed": "Keine: Browser zeigen den Button auf keiner Website. Bitte den Betreiber, "
                               "Ihre Website einzutragen.",
        "button.no_public_url": "Die öffentliche Adresse des Servers ist nicht eingestellt ([http] public_url).",
        "button.iframe_title": "Guthaben aufladen",
        "button.preview_blocked": "Die Vorschau erscheint nur, wenn auch das Portal ({origin}) zu den erlaubten "
                                  "Websites gehört; sonst zeigt der Browser hier eine Fehlermeldung.",
    },
    "en": {
        "button.nav": "Button", "button.title": "Top-up button",
        "button.snippet": "Put this HTML into your website:", "button.copy": "Copy",
        "button.preview": "Preview", "button.allowed": "Websites the button may appear on:",
        "button.none_allowed": "None: browsers show the button on no website. Ask the operator to add yours.",
        "button.no_public_url": "The server's public address is not set ([http] public_url).",
        "button.iframe_title": "Top up credit",
        "button.preview_blocked": "The preview shows only when the portal ({origin}) is among the allowed "
                                  "websites too; otherwise the browser shows an error here.",
    },
}


def portal_origin(portal) -> str:
    """The origin browsers open the portal at: that of ``[portal] public_url``, else of its own listener."""
    if portal.public_url:
        parts = urlsplit(portal.public_url)
        return f"{parts.scheme}://{parts.netloc}"
    return f"{'https' if portal.tls_certificate else 'http'}://{portal.address}:{portal.port}"


def button_page(ctx: PortalContext) -> Html:
    """GET: the snippet, a preview and the sites allowed to frame it."""
    profile = ctx.profile
    public_url = ctx.config.http.public_url
    allowed = (tags.ul(*[tags.li(site) for site in profile.frame_ancestors]) if profile.frame_ancestors
               else tags.p(ctx.t("button.none_allowed"), **{"class": "warning"}))
    if not public_url:
        return Html(ctx.t("button.title"), [tags.p(ctx.t("button.no_public_url"), **{"class": "warning"}),
                                            tags.p(ctx.t("button.allowed")), allowed])
    code = snippet(public_url, profile.button, profile.language, ctx.t("button.iframe_title"))
    origin = portal_origin(ctx.config.portal)
    blocked = ("" if origin in profile.frame_ancestors
               else tags.p(ctx.t("button.preview_blocked", origin=origin), **{"class": "warning"}))
    return Html(ctx.t("button.title"), [
        tags.form(
            tags.label(ctx.t("button.snippet"), tags.br(),
                       tags.textarea(code, id="button-snippet", name="snippet", rows="4", cols="80",
                                     readonly="readonly")),
            tags.br(),
            tags.button(ctx.t("button.copy"), type="button", **{"data-copy": "button-snippet"}),
            **{"class": "form"}),
        tags.h2(ctx.t("button.preview")), blocked,
        tags.iframe(src=topup_url(public_url, profile.button, profile.language), title=ctx.t("button.iframe_title"),
                    width="420", height="560", loading="lazy", referrerpolicy="no-referrer", **{"class": "preview"}),
        tags.p(ctx.t("button.allowed")), allowed,
    ])


ROUTES = [Route("button", button_page, nav="button.nav")]
