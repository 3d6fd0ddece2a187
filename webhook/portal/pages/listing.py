"""What the portal's long lists share: the page number from the query, and the links to the pages before
and after (plain links: the lists work without JavaScript)."""

from __future__ import annotations

from twisted.web.template import Tag, tags

from ..view import PortalContext

#: rows on one page of a list
PER_PAGE = 50

STRINGS = {
    "de": {"listing.previous": "← Zurück", "listing.next": "Weiter →", "listing.page": "Seite {page} von {pages}",
           "listing.rows": "{total} Einträge"},
    "en": {"listing.previous": "← Previous", "listing.next": "Next →", "listing.page": "Page {page} of {pages}",
           "listing.rows": "{total} rows"},
}


def page_number(ctx: PortalContext) -> int:
    """The page asked for in ``?page=`` (1 for none or nonsense)."""
    text = ctx.query.get("page", "1")
    return max(1, int(text)) if text.isdigit() and len(text) < 7 else 1


def pager(ctx: PortalContext, path: str, page: int, total: int, **query) -> Tag:
    """"Page n of m" with links to the neighbours, keeping ``query`` (the filters and the sort)."""
    pages = max(1, -(-total // PER_PAGE))
    links: list = []
    if page > 1:
        links.append(tags.a(ctx.t("listing.previous"), href=ctx.url(path, **query, page=page - 1), rel="prev"))
    links.append(tags.span(ctx.t("listing.page", page=page, pages=pages), " · ", ctx.t("listing.rows", total=total)))
    if page < pages:
        links.append(tags.a(ctx.t("listing.next"), href=ctx.url(path, **query, page=page + 1), rel="next"))
    return tags.nav(class_="pager")(*[item for link in links for item in (link, " ")])
