"""The iframe that puts a profile's top-up page on the provider's website.

``prepaid button`` prints it and the portal's "Button" page shows it; both take it from here, so that
the web side, which serves the page, is also where its address and its snippet are made.
"""

from __future__ import annotations

import html

from .urls import page_url


def topup_url(public_url: str, button_id: str, lang: str) -> str:
    """The address of a profile's top-up page, as browsers reach it."""
    return f"{page_url(public_url, button_id)}?lang={lang}"


def snippet(public_url: str, button_id: str, lang: str, title: str = "Top-up") -> str:
    """The iframe that embeds the top-up page (``prepaid button`` prints it, the portal shows it)."""
    src = topup_url(public_url, button_id, lang)
    return (f'<iframe src="{html.escape(src)}" title="{html.escape(title)}" width="420" height="560" '
            f'style="border:0" loading="lazy" referrerpolicy="no-referrer"></iframe>')
