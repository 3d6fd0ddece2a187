"""The portal's call list ("EVN"): every call to the profile's service numbers, filtered, paged and as CSV.

Each call: when, the caller as identified and as the INVITE gave it, how it was identified, what became
of it in words, its talk time, billed seconds and charge. A call refused because its number has no
account under the profile (mostly "no credit") carries the hint: the profile's accounts whose numbers
are a typo away (:mod:`billing.db.near_numbers`), each with its balance and a link to fix the number
on the Customers page (``customers/edit``). Works without JavaScript: the filter is a GET form, the
pages are links.
"""

from __future__ import annotations

import datetime
import zoneinfo

from twisted.web.template import tags

from billing.db.calls import OUTCOMES, CallFilter, outcome
from billing.numbers import normalise

from ..view import Csv, Html, PortalContext, Route

#: calls on one page
PAGE_SIZE = 50
#: the outcomes whose caller may have meant another account's number (when the number has none)
HINTED = ("no_credit", "unidentified")

STRINGS = {
    "de": {
        "calls.nav": "Anrufe (EVN)", "calls.title": "Anrufe (EVN)",
        "calls.from": "Von", "calls.to": "Bis", "calls.number": "Rufnummer", "calls.outcome": "Ergebnis",
        "calls.any": "alle", "calls.show": "Anzeigen", "calls.csv": "Als CSV herunterladen",
        "calls.time": "Zeit", "calls.caller": "Anrufer (erkannt)", "calls.received": "Anrufer (übermittelt)",
        "calls.source": "Erkannt über", "calls.duration": "Dauer", "calls.billed": "Abgerechnet (s)",
        "calls.charge": "Betrag", "calls.withheld": "unterdrückt", "calls.none_found": "Keine Anrufe gefunden.",
        "calls.count": "{total} Anrufe, Seite {page} von {pages}", "calls.prev": "← Neuere",
        "calls.next": "Ältere →", "calls.no_account": "Zu dieser Nummer gibt es kein Konto.",
        "calls.hint": "Vertippt? Ähnliche Nummern mit Konto:", "calls.fix": "Nummer korrigieren",
        "calls.balance": "Guthaben {amount}",
        "calls.source.from": "From", "calls.source.pai": "PAI", "calls.source.pin": "PIN",
        "calls.source.none": "keine", "calls.source.unknown": "unbekannt",
        "calls.outcome.talked": "Gespräch", "calls.outcome.no_credit": "Kein Guthaben",
        "calls.outcome.unidentified": "Nicht erkannt", "calls.outcome.no_agent": "Kein Berater erreicht",
        "calls.outcome.cut_off": "Guthaben verbraucht", "calls.outcome.caller_hung_up": "Anrufer aufgelegt",
        "calls.outcome.pin_locked": "PIN gesperrt", "calls.outcome.pin_wrong": "PIN falsch",
        "calls.outcome.refused": "Abgewiesen", "calls.outcome.failed": "Fehlgeschlagen",
    },
    "en": {
        "calls.nav": "Calls (EVN)", "calls.title": "Calls (EVN)",
        "calls.from": "From", "calls.to": "To", "calls.number": "Number", "calls.outcome": "Outcome",
        "calls.any": "any", "calls.show": "Show", "calls.csv": "Download as CSV",
        "calls.time": "Time", "calls.caller": "Caller (identified)", "calls.received": "Caller (as received)",
        "calls.source": "Identified by", "calls.duration": "Duration", "calls.billed": "Billed (s)",
        "calls.charge": "Charge", "calls.withheld": "withheld", "calls.none_found": "No calls found.",
        "calls.count": "{total} calls, page {page} of {pages}", "calls.prev": "← Newer",
        "calls.next": "Older →", "calls.no_account": "This number has no account.",
        "calls.hint": "A typo? Similar numbers with an account:", "calls.fix": "fix the number",
        "calls.balance": "balance {amount}",
        "calls.source.from": "From", "calls.source.pai": "PAI", "calls.source.pin": "PIN",
        "calls.source.none": "none", "calls.source.unknown": "unknown",
        "calls.outcome.talked": "talked", "calls.outcome.no_credit": "no credit",
        "calls.outcome.unidentified": "not identified", "calls.outcome.no_agent": "no agent answered",
        "calls.outcome.cut_off": "cut off by credit", "calls.outcome.caller_hung_up": "caller hung up",
        "calls.outcome.pin_locked": "PIN locked", "calls.outcome.pin_wrong": "PIN wrong",
        "calls.outcome.refused": "refused", "calls.outcome.failed": "failed",
    },
}


def _day_ms(text: str, zone: str, *, next_day: bool = False) -> int | None:
    """Midnight of the date ``text`` (YYYY-MM-DD) in ``zone`` (of the day after, with ``next_day``), or None."""
    try:
        day = datetime.date.fromisoformat(text.strip())
    except ValueError:
        return None
    if next_day:
        day += datetime.timedelta(days=1)
    moment = datetime.datetime.combine(day, datetime.time(), zoneinfo.ZoneInfo(zone))
    return int(moment.timestamp() * 1000)


def filter_of(ctx: PortalContext) -> CallFilter:
    """The filter the query asks for; what does not parse is left out."""
    q = ctx.query
    number = q.get("number", "").strip()
    if number:
        number = normalise(number, ctx.config.sip.default_region) or "".join(ch for ch in number if ch.isdigit())
    wanted = q.get("outcome", "")
    return CallFilter(since_ms=_day_ms(q.get("from", ""), ctx.timezone),
                      until_ms=_day_ms(q.get("to", ""), ctx.timezone, next_day=True),
                      number=number or None, outcome=wanted if wanted in OUTCOMES else None)


def _page_number(ctx: PortalContext) -> int:
    text = ctx.query.get("page", "1")
    return max(1, int(text)) if text.isdigit() and len(text) < 7 else 1


def _duration(record) -> str:
    """The talk time (answer to end), m:ss; "" for a call nobody answered."""
    if record.answer_ms is None or record.end_ms is None:
        return ""
    seconds = max(0, record.end_ms - record.answer_ms) // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


def _hint_number(record) -> str | None:
    """The number a refused call's caller may have mistyped, when its outcome asks for a hint."""
    if outcome(record) not in HINTED:
        return None
    return record.caller or record.caller_received


def _cells(ctx: PortalContext, record) -> list[str]:
    """A call as the texts of its columns (the table's and the CSV's)."""
    caller = record.caller or ""
    if record.privacy and caller:
        caller = f"{caller} ({ctx.t('calls.withheld')})"
    return [ctx.when(record.invite_ms), caller, record.caller_received or "",
            ctx.t(f"calls.source.{record.identity_source}"), ctx.t(f"calls.outcome.{outcome(record)}"),
            _duration(record), str(record.billed_s), ctx.money(record.charge_cents)]


def _headers(ctx: PortalContext) -> list[str]:
    return [ctx.t(f"calls.{key}") for key in ("time", "caller", "received", "source", "outcome", "duration",
                                              "billed", "charge")]


def _filter_form(ctx: PortalContext):
    q = ctx.query
    options = [tags.option(ctx.t("calls.any"), value="")]
    for name in OUTCOMES:
        attrs = {"selected": "selected"} if q.get("outcome") == name else {}
        options.append(tags.option(ctx.t(f"calls.outcome.{name}"), value=name, **attrs))

    def field(key: str, kind: str, name: str):
        return tags.label(ctx.t(key), " ", tags.input(type=kind, name=name, value=q.get(name, "")))
    return tags.form(field("calls.from", "date", "from"), " ", field("calls.to", "date", "to"), " ",
                     field("calls.number", "text", "number"), " ",
                     tags.label(ctx.t("calls.outcome"), " ", tags.select(*options, name="outcome")), " ",
                     tags.button(ctx.t("calls.show"), type="submit"),
                     method="get", action=ctx.url("calls"), **{"class": "form"})


def _hint_row(ctx: PortalContext, number: str, candidates):
    """The row under a refused call: its number has no account; these accounts' numbers are a typo away."""
    parts = [ctx.t("calls.no_account")]
    if candidates:
        items = [tags.li(account.number, " (", ctx.t("calls.balance", amount=ctx.money(account.balance_cents)),
                         ") ", tags.a(ctx.t("calls.fix"), href=ctx.url("customers/edit", number=account.number)))
                 for account in candidates]
        parts += [" ", ctx.t("calls.hint"), tags.ul(*items)]
    return tags.tr(tags.td(*parts, colspan="8"), **{"class": "hint"})


def _query_for(ctx: PortalContext, **changes) -> dict:
    keep = {k: ctx.query.get(k, "") for k in ("from", "to", "number", "outcome")}
    keep.update(changes)
    return keep


async def calls_page(ctx: PortalContext):
    """GET: the calls as a page (``format=csv``: every matching call as CSV)."""
    which = filter_of(ctx)
    profile = ctx.profile.name
    if ctx.query.get("format") == "csv":
        found = await ctx.store.profile_calls(profile, which)
        return Csv(f"calls-{profile}.csv", [_headers(ctx)] + [_cells(ctx, r) for r in found.records])
    page = _page_number(ctx)
    found = await ctx.store.profile_calls(profile, which, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    hinted = {n for n in map(_hint_number, found.records) if n}
    near = await ctx.store.near_accounts(profile, hinted) if hinted else {}
    rows = []
    for record in found.records:
        rows.append(tags.tr(*[tags.td(text) for text in _cells(ctx, record)]))
        number = _hint_number(record)
        if number in near:
            rows.append(_hint_row(ctx, number, near[number]))
    pages = max(1, -(-found.total // PAGE_SIZE))
    nav = [ctx.t("calls.count", total=found.total, page=page, pages=pages)]
    if page > 1:
        nav += [" ", tags.a(ctx.t("calls.prev"), href=ctx.url("calls", **_query_for(ctx, page=page - 1)))]
    if page < pages:
        nav += [" ", tags.a(ctx.t("calls.next"), href=ctx.url("calls", **_query_for(ctx, page=page + 1)))]
    table = (tags.table(tags.thead(tags.tr(*[tags.th(h) for h in _headers(ctx)])), tags.tbody(*rows),
                        **{"class": "data"})
             if rows else tags.p(ctx.t("calls.none_found")))
    return Html(ctx.t("calls.title"), [
        _filter_form(ctx),
        tags.p(tags.a(ctx.t("calls.csv"), href=ctx.url("calls", **_query_for(ctx, format="csv")))),
        table,
        tags.p(*nav, **{"class": "paging"}),
    ])


ROUTES = [Route("calls", calls_page, nav="calls.nav")]
