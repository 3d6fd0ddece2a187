"""The portal's "Transactions" page (``transactions``) and its CSV export (``transactions.csv``).

The profile's ledger, newest first, a top-up's bonus on the top-up's line; filters by number (any
usual form), kind and date range (days in the profile's zone, the last one included); 50 rows a page
with links to the next and previous; the export holds every row of the filter, amounts with the
user's decimal mark (a comma for German).
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass

from twisted.web.template import tags

from billing.db import ledger

from ..view import Csv, Html, PortalContext, Route
from .new_transaction import Refused, caller_number

PAGE_ROWS = 50

#: the kind filter's choices -> the ledger kinds they show
KIND_FILTER = {
    "topup": ("topup",),
    "call": ("call_debit", "call_refund"),
    "manual": ("manual", "correction"),
    "api": ("api_credit", "api_debit"),
    "reversal": ("reversal",),
}

#: ledger source -> how the method column names it (other sources: their own name)
METHODS = {"paypal": "PayPal", "klarna": "Klarna", "paysafecard": "paysafecard", "api": "API"}


@dataclass(frozen=True)
class Filter:
    """What the query string asks for, checked: E.164 number, a KIND_FILTER key, [since, until) in ms."""

    number: str | None = None
    kind: str = ""
    since_ms: int | None = None
    until_ms: int | None = None
    page: int = 1


def _day_ms(ctx: PortalContext, text: str, *, next_day: bool = False) -> int:
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            day = datetime.datetime.strptime(text.strip(), fmt).date()
            break
        except ValueError:
            continue
    else:
        raise Refused(ctx.t("transactions_bad_date", date=text.strip()))
    if next_day:
        day += datetime.timedelta(days=1)
    start = datetime.datetime.combine(day, datetime.time(), zoneinfo.ZoneInfo(ctx.timezone))
    return int(start.timestamp() * 1000)


def read_filter(ctx: PortalContext) -> Filter:
    """The filter of the query string, or :class:`Refused` saying what is wrong with it."""
    q = ctx.query
    number = caller_number(ctx, q["number"], valid=False) if q.get("number", "").strip() else None
    kind = q.get("kind", "")
    if kind and kind not in KIND_FILTER:
        kind = ""
    since = _day_ms(ctx, q["from"]) if q.get("from", "").strip() else None
    until = _day_ms(ctx, q["to"], next_day=True) if q.get("to", "").strip() else None
    page = int(q["page"]) if q.get("page", "").isdigit() and 0 < int(q["page"]) < 100_000 else 1
    return Filter(number, kind, since, until, page)


def _bookings(ctx: PortalContext, f: Filter, *, limit: int | None, offset: int = 0):
    return ctx.store.run(ledger.bookings, profile=ctx.profile.name, number=f.number,
                         kinds=KIND_FILTER.get(f.kind), since_ms=f.since_ms, until_ms=f.until_ms,
                         limit=limit, offset=offset)


def _method(ctx: PortalContext, e) -> str:
    if e.kind in ("call_debit", "call_refund"):
        name = ctx.t("transactions_method_call")
    elif e.source == "manual":
        name = ctx.t("transactions_method_manual")
    else:
        name = METHODS.get(e.source, e.source)
    if e.kind in ("reversal", "correction", "call_refund"):
        name += f" ({ctx.t(f'transactions_kind_{e.kind}')})"
    return name


def _who(e) -> str:
    return e.actor if e.source in ("manual", "api") else ""


def _decimal(ctx: PortalContext, cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}{',' if ctx.lang == 'de' else '.'}{part:02d}"


def _columns(ctx: PortalContext) -> list[str]:
    return [ctx.t(f"transactions_col_{c}") for c in ("created", "number", "method", "amount", "bonus",
                                                       "balance_after", "who", "note")]


async def page(ctx: PortalContext) -> Html:
    """The filter form and one page of the filtered ledger."""
    try:
        f = read_filter(ctx)
    except Refused as exc:
        return Html(ctx.t("transactions_title"), [_filter_form(ctx), tags.p(str(exc), class_="error", role="alert")],
                    400)
    rows = await _bookings(ctx, f, limit=PAGE_ROWS + 1, offset=(f.page - 1) * PAGE_ROWS)
    more = len(rows) > PAGE_ROWS
    rows = rows[:PAGE_ROWS]
    table = tags.table(
        tags.thead(tags.tr(*(tags.th(c, scope="col") for c in _columns(ctx)))),
        tags.tbody(*(tags.tr(
            tags.td(ctx.when(b.entry.at_ms)), tags.td(b.entry.number), tags.td(_method(ctx, b.entry)),
            tags.td(ctx.money(b.entry.amount_cents), class_="num"),
            tags.td(ctx.money(b.bonus.amount_cents) if b.bonus else "", class_="num"),
            tags.td(ctx.money(b.balance_after_cents), class_="num"), tags.td(_who(b.entry)),
            tags.td(b.entry.note)) for b in rows)),
        class_="data") if rows else tags.p(ctx.t("transactions_none"))
    args = {"number": ctx.query.get("number", ""), "kind": f.kind, "from": ctx.query.get("from", ""),
            "to": ctx.query.get("to", "")}
    paging = tags.nav(
        tags.a(ctx.t("transactions_newer"), href=ctx.url("transactions", **args, page=f.page - 1), rel="prev")
        if f.page > 1 else "", " ",
        tags.a(ctx.t("transactions_older"), href=ctx.url("transactions", **args, page=f.page + 1), rel="next")
        if more else "", class_="paging")
    export = tags.p(tags.a(ctx.t("transactions_csv"), href=ctx.url("transactions.csv", **args)))
    return Html(ctx.t("transactions_title"), [_filter_form(ctx), export, table, paging])


def _filter_form(ctx: PortalContext):
    q = ctx.query
    kinds = [tags.option(ctx.t("transactions_kind_all"), value="")] + [
        tags.option(ctx.t(f"transactions_filter_{k}"), value=k, **({"selected": "selected"} if q.get("kind") == k else {}))
        for k in KIND_FILTER]
    return tags.form(
        tags.label(ctx.t("transactions_col_number"), tags.input(name="number", value=q.get("number", ""),
                                                                  inputmode="tel")),
        tags.label(ctx.t("transactions_filter_kind"), tags.select(*kinds, name="kind")),
        tags.label(ctx.t("transactions_filter_from"), tags.input(type="date", name="from", value=q.get("from", ""))),
        tags.label(ctx.t("transactions_filter_to"), tags.input(type="date", name="to", value=q.get("to", ""))),
        tags.button(ctx.t("transactions_filter_apply"), type="submit"),
        class_="form filter", method="get", action=ctx.url("transactions"))


async def csv_page(ctx: PortalContext):
    """Every row of the filter as CSV (no paging); a bad filter is the page with its message."""
    try:
        f = read_filter(ctx)
    except Refused:
        return await page(ctx)
    rows = await _bookings(ctx, f, limit=None)
    return Csv("transactions.csv", [_columns(ctx)] + [
        [ctx.when(b.entry.at_ms), b.entry.number, _method(ctx, b.entry), _decimal(ctx, b.entry.amount_cents),
         _decimal(ctx, b.bonus.amount_cents) if b.bonus else "", _decimal(ctx, b.balance_after_cents),
         _who(b.entry), b.entry.note] for b in rows])


ROUTES = [Route("transactions", page, nav="transactions_nav"), Route("transactions.csv", csv_page)]

STRINGS = {
    "de": {
        "transactions_nav": "Transaktionen",
        "transactions_title": "Transaktionen",
        "transactions_col_created": "Erstellt",
        "transactions_col_number": "Rufnummer",
        "transactions_col_method": "Zahlungsart",
        "transactions_col_amount": "Betrag",
        "transactions_col_bonus": "Bonus",
        "transactions_col_balance_after": "Guthaben danach",
        "transactions_col_who": "Von",
        "transactions_col_note": "Notiz",
        "transactions_method_call": "Anruf",
        "transactions_method_manual": "Manuell",
        "transactions_kind_reversal": "Rückbuchung",
        "transactions_kind_correction": "Korrektur",
        "transactions_kind_call_refund": "Erstattung",
        "transactions_kind_all": "Alle",
        "transactions_filter_kind": "Art",
        "transactions_filter_topup": "Aufladungen",
        "transactions_filter_call": "Anrufe",
        "transactions_filter_manual": "Manuell und Korrekturen",
        "transactions_filter_api": "API",
        "transactions_filter_reversal": "Rückbuchungen",
        "transactions_filter_from": "Von (Tag)",
        "transactions_filter_to": "Bis (Tag, einschließlich)",
        "transactions_filter_apply": "Filtern",
        "transactions_none": "Keine Transaktionen für diesen Filter.",
        "transactions_newer": "← Neuere",
        "transactions_older": "Ältere →",
        "transactions_csv": "Als CSV herunterladen",
        "transactions_bad_date": "„{date}“ ist kein Datum; bitte TT.MM.JJJJ oder JJJJ-MM-TT.",
    },
    "en": {
        "transactions_nav": "Transactions",
        "transactions_title": "Transactions",
        "transactions_col_created": "Created",
        "transactions_col_number": "Number",
        "transactions_col_method": "Method",
        "transactions_col_amount": "Amount",
        "transactions_col_bonus": "Bonus",
        "transactions_col_balance_after": "Balance after",
        "transactions_col_who": "By",
        "transactions_col_note": "Note",
        "transactions_method_call": "Call",
        "transactions_method_manual": "Manual",
        "transactions_kind_reversal": "reversal",
        "transactions_kind_correction": "correction",
        "transactions_kind_call_refund": "refund",
        "transactions_kind_all": "All",
        "transactions_filter_kind": "Kind",
        "transactions_filter_topup": "Top-ups",
        "transactions_filter_call": "Calls",
        "transactions_filter_manual": "Manual and corrections",
        "transactions_filter_api": "API",
        "transactions_filter_reversal": "Reversals",
        "transactions_filter_from": "From (day)",
        "transactions_filter_to": "To (day, included)",
        "transactions_filter_apply": "Filter",
        "transactions_none": "No transactions for this filter.",
        "transactions_newer": "← Newer",
        "transactions_older": "Older →",
        "transactions_csv": "Download as CSV",
        "transactions_bad_date": "“{date}” is no date; please DD.MM.YYYY or YYYY-MM-DD.",
    },
}
