"""The portal's "Prepaid-Kunden": a profile's accounts, searched by number in any usual form, sorted by any
column, 50 a page; and the number edit (``customers/edit?number=<E.164>``, which other pages link to).

The edit moves an account and its ledger to a new number (``Store.renumber``; call records keep the
number each call came from). When the new number has an account of its own, the page shows both
balances and asks before merging them (a second POST with ``merge=1``). Either way the store writes an
audit row (``portal:<login>`` from the client's address). POSTs answer with a redirect and a notice.
"""

from __future__ import annotations

from twisted.web.template import Tag, tags

from billing.db.customer_list import SORTS
from billing.db.rows import NoAccount, NumberTaken, StoreError
from billing.numbers import NumberRefused, entered, national, normalise

from ..view import Html, PortalContext, Redirect, Route
from . import listing

STRINGS = {
    "de": {
        "customers.nav": "Prepaid-Kunden",
        "customers.title": "Prepaid-Kunden",
        "customers.search": "Nummer suchen",
        "customers.search_button": "Suchen",
        "customers.number": "Nummer",
        "customers.balance": "Guthaben",
        "customers.topups": "Anzahl",
        "customers.last_topup": "Letzte Aufladung",
        "customers.last_call": "Letzter Anruf",
        "customers.edit": "Nummer ändern",
        "customers.none": "Keine Kunden gefunden.",
        "customers.edit_title": "Nummer ändern: {number}",
        "customers.new_number": "Neue Nummer",
        "customers.save": "Nummer ändern",
        "customers.cancel": "Abbrechen",
        "customers.bad_number": "„{text}“ ist keine Rufnummer.",
        "customers.same_number": "Die neue Nummer ist die alte.",
        "customers.no_account": "Für diese Nummer gibt es kein Konto.",
        "customers.merge_question": "{new} hat schon ein Konto. Beide Konten zusammenführen?",
        "customers.merge": "Zusammenführen",
        "customers.refused": "Nicht geändert: {reason}",
        "customers.renumbered": "Die Nummer wurde geändert; Guthaben und Buchungen sind umgezogen.",
        "customers.merged": "Die Konten wurden zusammengeführt.",
        "customers.history_note": "Guthaben und Buchungen ziehen mit; Einzelverbindungen behalten die Nummer, "
                                  "von der angerufen wurde.",
    },
    "en": {
        "customers.nav": "Prepaid customers",
        "customers.title": "Prepaid customers",
        "customers.search": "Search number",
        "customers.search_button": "Search",
        "customers.number": "Number",
        "customers.balance": "Balance",
        "customers.topups": "Top-ups",
        "customers.last_topup": "Last top-up",
        "customers.last_call": "Last call",
        "customers.edit": "Change number",
        "customers.none": "No customers found.",
        "customers.edit_title": "Change number: {number}",
        "customers.new_number": "New number",
        "customers.save": "Change number",
        "customers.cancel": "Cancel",
        "customers.bad_number": "“{text}” is not a phone number.",
        "customers.same_number": "The new number is the old one.",
        "customers.no_account": "There is no account for this number.",
        "customers.merge_question": "{new} already has an account. Merge both accounts?",
        "customers.merge": "Merge",
        "customers.refused": "Not changed: {reason}",
        "customers.renumbered": "The number was changed; balance and transactions moved with it.",
        "customers.merged": "The accounts were merged.",
        "customers.history_note": "Balance and transactions move; itemised calls keep the number they were "
                                  "made from.",
    },
}
for _lang, _texts in listing.STRINGS.items():
    STRINGS[_lang].update(_texts)

#: the list's columns: (sort key, text key, numeric)
COLUMNS = (("number", "customers.number", False), ("balance", "customers.balance", True),
           ("topups", "customers.topups", True), ("last_topup", "customers.last_topup", False),
           ("last_call", "customers.last_call", False))


def _region(ctx: PortalContext) -> str:
    return ctx.config.sip.default_region


def _number_cell(e164: str) -> Tag:
    return tags.td(tags.span(e164), tags.br(), tags.small(national(e164)))


def _header(ctx: PortalContext, q: str, sort: str, descending: bool) -> Tag:
    cells = []
    for key, text, numeric in COLUMNS:
        here = key == sort
        link = tags.a(ctx.t(text), (" ▼" if descending else " ▲") if here else "",
                      href=ctx.url("customers", q=q, sort=key, dir="asc" if here and descending or not here and
                                   not numeric else "desc"))
        cells.append(tags.th(link, scope="col",
                             **({"aria-sort": "descending" if descending else "ascending"} if here else {})))
    cells.append(tags.th(tags.span(ctx.t("customers.edit"), class_="visually-hidden"), scope="col"))
    return tags.thead(tags.tr(*cells))


async def customers(ctx: PortalContext) -> Html:
    """The list of ``ctx.profile``'s accounts."""
    q = ctx.query.get("q", "").strip()[:40]
    sort = ctx.query.get("sort", "number")
    sort = sort if sort in SORTS else "number"
    descending = ctx.query.get("dir") == "desc"
    page = listing.page_number(ctx)
    result = await ctx.store.customer_page(ctx.profile.name, search=q, region=_region(ctx), sort=sort,
                                           descending=descending, offset=(page - 1) * listing.PER_PAGE,
                                           limit=listing.PER_PAGE)
    search = tags.form(class_="form", method="get", action=ctx.url("customers"), role="search")(
        tags.label(ctx.t("customers.search"), for_="customers-q"),
        tags.input(type="search", id="customers-q", name="q", value=q, inputmode="tel", autocomplete="off"),
        tags.input(type="hidden", name="sort", value=sort),
        tags.input(type="hidden", name="dir", value="desc" if descending else "asc"),
        tags.button(ctx.t("customers.search_button"), type="submit"))
    rows = [tags.tr(_number_cell(c.number), tags.td(ctx.money(c.balance_cents), class_="num"),
                    tags.td(str(c.topups), class_="num"), tags.td(ctx.when(c.last_topup_ms)),
                    tags.td(ctx.when(c.last_call_ms)),
                    tags.td(tags.a("✎", href=ctx.url("customers/edit", number=c.number),
                                   title=ctx.t("customers.edit"), **{"aria-label": ctx.t("customers.edit")})))
            for c in result.rows]
    body: list = [search]
    if rows:
        body.append(tags.table(class_="data")(_header(ctx, q, sort, descending), tags.tbody(*rows)))
    else:
        body.append(tags.p(ctx.t("customers.none")))
    body.append(listing.pager(ctx, "customers", page, result.total, q=q, sort=sort,
                              dir="desc" if descending else "asc"))
    return Html(ctx.t("customers.title"), body)


def _csrf(ctx: PortalContext) -> Tag:
    return tags.input(type="hidden", name="csrf", value=ctx.csrf_token)


def _edit_form(ctx: PortalContext, old: str, typed: str = "", error: str = "") -> list:
    form = tags.form(class_="form", method="post", action=ctx.url("customers/edit", number=old))(
        _csrf(ctx),
        tags.label(ctx.t("customers.new_number"), for_="customers-new"),
        tags.input(type="tel", id="customers-new", name="new", value=typed, required="required",
                   autocomplete="off", **({"aria-invalid": "true"} if error else {})),
        tags.button(ctx.t("customers.save"), type="submit"),
        " ", tags.a(ctx.t("customers.cancel"), href=ctx.url("customers", q=old)))
    return ([tags.p(error, class_="error", role="alert")] if error else []) + [
        tags.p(ctx.t("customers.history_note")), form]


def _merge_question(ctx: PortalContext, old, new) -> list:
    """Both accounts and their balances, and a form that merges (``merge=1``)."""
    table = tags.table(class_="data")(
        tags.thead(tags.tr(tags.th(ctx.t("customers.number"), scope="col"),
                           tags.th(ctx.t("customers.balance"), scope="col"))),
        tags.tbody(*[tags.tr(_number_cell(a.number), tags.td(ctx.money(a.balance_cents), class_="num"))
                     for a in (old, new)]))
    form = tags.form(class_="form", method="post", action=ctx.url("customers/edit", number=old.number))(
        _csrf(ctx), tags.input(type="hidden", name="new", value=new.number),
        tags.input(type="hidden", name="merge", value="1"),
        tags.button(ctx.t("customers.merge"), type="submit"),
        " ", tags.a(ctx.t("customers.cancel"), href=ctx.url("customers/edit", number=old.number)))
    return [tags.p(ctx.t("customers.merge_question", new=new.number), role="alert"), table, form]


async def edit(ctx: PortalContext):
    """The number edit of the account ``?number=``: the form (GET), the change or the merge question (POST)."""
    old = normalise(ctx.query.get("number", ""), _region(ctx))
    account = await ctx.store.account(ctx.profile.name, old) if old else None
    if account is None:
        return Html(ctx.t("customers.edit"), tags.p(ctx.t("customers.no_account")), status=404)
    title = ctx.t("customers.edit_title", number=old)
    if ctx.method != "POST":
        return Html(title, _edit_form(ctx, old))
    typed = ctx.form.get("new", "").strip()[:40]
    try:
        new = entered(typed, _region(ctx))
    except NumberRefused:
        return Html(title, _edit_form(ctx, old, typed, ctx.t("customers.bad_number", text=typed)), status=400)
    if new == old:
        return Html(title, _edit_form(ctx, old, typed, ctx.t("customers.same_number")), status=400)
    merge = ctx.form.get("merge") == "1"
    if not merge:
        taken = await ctx.store.account(ctx.profile.name, new)
        if taken is not None:
            return Html(title, _merge_question(ctx, account, taken))
    try:
        result = await ctx.store.renumber(ctx.profile.name, old, new, merge=merge, actor=f"portal:{ctx.user.name}",
                                          source=ctx.client_address)
    except NumberTaken:                 # an account appeared on the new number meanwhile: ask again
        taken = await ctx.store.account(ctx.profile.name, new)
        return Html(title, _merge_question(ctx, account, taken))
    except NoAccount:
        return Html(title, tags.p(ctx.t("customers.no_account")), status=404)
    except StoreError as exc:
        return Html(title, _edit_form(ctx, old, typed, ctx.t("customers.refused", reason=str(exc))), status=409)
    return Redirect(ctx.url("customers", q=new), notice=ctx.t("customers.merged" if result.merged
                                                                 else "customers.renumbered"))


ROUTES = [Route("customers", customers, nav="customers.nav"),
          Route("customers/edit", edit, methods=("GET", "POST"))]
