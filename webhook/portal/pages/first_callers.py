"""The portal's "First callers": who has used the profile's first-caller offer, and when.

The list is searched by number in any usual form ("0151 2345678", "+49151...", a part of it), newest
first, 50 a page. An operator may take an entry off the list (the number gets the offer again) or import
numbers that had it elsewhere (a textarea or an uploaded file: one number a line, or CSV with the number
in the first column; each normalised to E.164, the invalid ones reported). Providers see the list only: a
POST of theirs is refused with 403 and changes nothing. Every change is an audit row (actor
``portal:<login>``, from the client's address), written by the store with the change.
"""

from __future__ import annotations

import csv

from twisted.internet.defer import inlineCallbacks
from twisted.web.template import tags

from billing.db.first_callers import search_digits
from billing.numbers import national, normalise

from ..view import Html, PortalContext, Redirect, Route

PAGE_SIZE = 50
#: the most numbers one import takes (a bigger list is split by the operator)
MAX_IMPORT = 10_000

STRINGS = {
    "de": {
        "first_callers.nav": "Erstanrufer",
        "first_callers.title": "Erstanrufer",
        "first_callers.offer": "Angebot: die ersten {minutes} Minuten zu {price} pro Minute.",
        "first_callers.no_offer": "Dieses Profil hat kein Erstanrufer-Angebot.",
        "first_callers.search": "Nummer suchen",
        "first_callers.search_button": "Suchen",
        "first_callers.number": "Nummer",
        "first_callers.used": "Genutzt am",
        "first_callers.remove": "Entfernen",
        "first_callers.none": "Keine Erstanrufer gefunden.",
        "first_callers.count": "{total} Einträge, Seite {page} von {pages}",
        "first_callers.previous": "Zurück",
        "first_callers.next": "Weiter",
        "first_callers.import_title": "Nummern importieren",
        "first_callers.import_help": "Eine Nummer pro Zeile, oder CSV mit der Nummer in der ersten Spalte.",
        "first_callers.import_file": "oder Datei",
        "first_callers.import_button": "Importieren",
        "first_callers.removed": "{number} wurde entfernt und erhält das Angebot wieder.",
        "first_callers.not_listed": "{number} steht nicht auf der Liste.",
        "first_callers.imported": "{added} Nummern aufgenommen, {already} standen schon auf der Liste.",
        "first_callers.invalid": "Keine Rufnummern: {numbers}",
        "first_callers.too_many": "Höchstens {limit} Nummern auf einmal.",
        "first_callers.bad_number": "„{text}“ ist keine Rufnummer.",
        "first_callers.forbidden": "Nur Betreiber dürfen die Liste ändern.",
    },
    "en": {
        "first_callers.nav": "First callers",
        "first_callers.title": "First callers",
        "first_callers.offer": "Offer: the first {minutes} minutes at {price} per minute.",
        "first_callers.no_offer": "This profile has no first-caller offer.",
        "first_callers.search": "Search number",
        "first_callers.search_button": "Search",
        "first_callers.number": "Number",
        "first_callers.used": "Used on",
        "first_callers.remove": "Remove",
        "first_callers.none": "No first callers found.",
        "first_callers.count": "{total} entries, page {page} of {pages}",
        "first_callers.previous": "Previous",
        "first_callers.next": "Next",
        "first_callers.import_title": "Import numbers",
        "first_callers.import_help": "One number a line, or CSV with the number in the first column.",
        "first_callers.import_file": "or file",
        "first_callers.import_button": "Import",
        "first_callers.removed": "{number} was removed and gets the offer again.",
        "first_callers.not_listed": "{number} is not on the list.",
        "first_callers.imported": "{added} numbers added, {already} were on the list already.",
        "first_callers.invalid": "Not phone numbers: {numbers}",
        "first_callers.too_many": "At most {limit} numbers at once.",
        "first_callers.bad_number": "“{text}” is not a phone number.",
        "first_callers.forbidden": "Only operators may change the list.",
    },
}


def parse_numbers(*texts: str) -> tuple[list[str], list[str]]:
    """The numbers of an import: (E.164 numbers in order, without repeats; the entries that are none).

    Each text has one number a line, or is CSV (``,`` or ``;``) with the number in the first column; empty
    lines, and a first line whose first cell has no digit (a header), are skipped."""
    numbers: dict[str, None] = {}
    invalid: list[str] = []
    for text in texts:
        for line_no, line in enumerate(text.splitlines()):
            row = next(csv.reader([line], delimiter=";" if ";" in line else ","), [])
            cell = row[0].strip() if row else ""
            if not cell or (line_no == 0 and not any(ch.isdigit() for ch in cell)):
                continue
            number = normalise(cell)
            if number is None:
                invalid.append(cell)
            else:
                numbers[number] = None
    return list(numbers), invalid


def _actor(ctx: PortalContext) -> str:
    return f"portal:{ctx.user.name}"


def _digits(query: str) -> str:
    """What a search looks for in the E.164 numbers: a number written with its prefix ("030 1234",
    "+49 30 1234", "0049...") as E.164 digits, else the digits typed (a part from anywhere in the number)."""
    if query.startswith(("+", "0")):
        number = normalise(query)
        if number is not None:
            return number[1:]
    return search_digits(query)


def _page_number(ctx: PortalContext) -> int:
    text = ctx.query.get("page", "1")
    return int(text) if text.isdigit() and int(text) > 0 else 1


@inlineCallbacks
def first_callers(ctx: PortalContext):
    """GET: the list; POST (operators): ``action=remove`` with ``number``, or ``action=import`` with
    ``numbers`` (textarea) and/or ``file``."""
    if ctx.method == "POST":
        result = yield _change(ctx)
        return result
    query = ctx.query.get("q", "").strip()
    page = _page_number(ctx)
    listing = yield ctx.store.first_callers(ctx.profile.name, digits=_digits(query),
                                            offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    return Html(ctx.t("first_callers.title"), _body(ctx, query, page, listing))


def _body(ctx: PortalContext, query: str, page: int, listing) -> list:
    offer = ctx.profile.billing.first_caller
    body: list = [tags.p(ctx.t("first_callers.no_offer") if offer is None else
                         ctx.t("first_callers.offer", minutes=offer.period_s // 60,
                               price=ctx.money(int(offer.per_minute * 100))))]
    body.append(tags.form(method="get", action=ctx.url("first-callers"))(
        tags.label(ctx.t("first_callers.search"), " ", tags.input(type="search", name="q", value=query)),
        " ", tags.button(ctx.t("first_callers.search_button"), type="submit")))
    if not listing.rows:
        body.append(tags.p(ctx.t("first_callers.none"), class_="empty"))
    else:
        head = [tags.th(ctx.t("first_callers.number")), tags.th(ctx.t("first_callers.used"))]
        if ctx.user.is_operator:
            head.append(tags.th(""))
        rows = [tags.tr(*_row(ctx, entry)) for entry in listing.rows]
        body.append(tags.table(class_="first-callers")(tags.thead(tags.tr(*head)), tags.tbody(*rows)))
    pages = max(1, -(-listing.total // PAGE_SIZE))
    nav = [ctx.t("first_callers.count", total=listing.total, page=page, pages=pages)]
    if page > 1:
        nav += [" ", tags.a(ctx.t("first_callers.previous"), href=ctx.url("first-callers", q=query, page=page - 1))]
    if page < pages:
        nav += [" ", tags.a(ctx.t("first_callers.next"), href=ctx.url("first-callers", q=query, page=page + 1))]
    body.append(tags.p(*nav, class_="pages"))
    if ctx.user.is_operator:
        body.append(_import_form(ctx))
    return body


def _row(ctx: PortalContext, entry) -> list:
    cells = [tags.td(national(entry.number), " ", tags.small(entry.number)), tags.td(ctx.when(entry.first_call_ms))]
    if ctx.user.is_operator:
        cells.append(tags.td(tags.form(method="post", action=ctx.url("first-callers"))(
            _csrf(ctx), tags.input(type="hidden", name="action", value="remove"),
            tags.input(type="hidden", name="number", value=entry.number),
            tags.button(ctx.t("first_callers.remove"), type="submit"))))
    return cells


def _csrf(ctx: PortalContext):
    return tags.input(type="hidden", name="csrf", value=ctx.csrf_token)


def _import_form(ctx: PortalContext):
    return tags.section(class_="import")(
        tags.h2(ctx.t("first_callers.import_title")),
        tags.form(method="post", action=ctx.url("first-callers"), enctype="multipart/form-data")(
            _csrf(ctx), tags.input(type="hidden", name="action", value="import"),
            tags.p(ctx.t("first_callers.import_help")),
            tags.textarea(name="numbers", rows="8", cols="40"),
            tags.p(tags.label(ctx.t("first_callers.import_file"), " ",
                              tags.input(type="file", name="file", accept=".csv,.txt,text/csv,text/plain"))),
            tags.button(ctx.t("first_callers.import_button"), type="submit")))


def _refused(ctx: PortalContext, key: str, status: int, **values) -> Html:
    return Html(ctx.t("first_callers.title"), [tags.p(ctx.t(key, **values), class_="error")], status=status)


@inlineCallbacks
def _change(ctx: PortalContext):
    if not ctx.user.is_operator:
        return _refused(ctx, "first_callers.forbidden", 403)
    back = ctx.url("first-callers")
    action = ctx.form.get("action", "")
    if action == "remove":
        text = ctx.form.get("number", "")
        number = normalise(text)
        if number is None:
            return _refused(ctx, "first_callers.bad_number", 400, text=text)
        removed = yield ctx.store.remove_first_caller(ctx.profile.name, number, actor=_actor(ctx),
                                                      source=ctx.client_address)
        key = "first_callers.removed" if removed is not None else "first_callers.not_listed"
        return Redirect(back, ctx.t(key, number=number))
    if action == "import":
        numbers, invalid = parse_numbers(ctx.form.get("numbers", ""), ctx.form.get("file", ""))
        if len(numbers) > MAX_IMPORT:
            return _refused(ctx, "first_callers.too_many", 400, limit=MAX_IMPORT)
        done = yield ctx.store.add_first_callers(ctx.profile.name, numbers, actor=_actor(ctx),
                                                 source=ctx.client_address)
        notice = ctx.t("first_callers.imported", added=len(done.added), already=len(done.already))
        if invalid:
            notice += " " + ctx.t("first_callers.invalid", numbers=", ".join(invalid[:20])
                                  + (" …" if len(invalid) > 20 else ""))
        return Redirect(back, notice)
    return Html(ctx.t("first_callers.title"), [tags.p(f"unknown action {action!r}")], status=400)


ROUTES = [Route("first-callers", first_callers, methods=("GET", "POST"), nav="first_callers.nav")]
