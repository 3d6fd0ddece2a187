"""The portal's "Statements" page (``statements``), its CSV (``statements.csv``) and printable form
(``statements/print``): the monthly settlement of ``billing.settlement`` for this profile, or for every
profile of its provider that the user may see, with the month's bounds in each profile's time zone.

The figures are the settlement's own (``build_statement``, ``to_csv``, the month cut by
``billing.settlement.month_bounds_ms``); this page only says what each figure is: the top-ups were paid
to the provider's own merchant accounts, and the fees are what the provider owes the operator.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import zoneinfo

from twisted.web.template import tags

from billing.settlement import LINES, Statement, build_statement, to_csv

from ..view import Csv, Html, PortalContext, Route

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
MONTHS_OFFERED = 24

#: the lines shown under "fees owed to the operator"; the rest are the month's money movements
FEE_LINES = ("fee_topup_percent_cents", "fee_per_transaction_cents", "fee_per_minute_cents", "fees_cents")


def _this_month(ctx: PortalContext) -> str:
    now = datetime.datetime.fromtimestamp(ctx.now_ms / 1000, zoneinfo.ZoneInfo(ctx.timezone))
    return f"{now.year:04d}-{now.month:02d}"


def _months(ctx: PortalContext) -> list[str]:
    year, mon = (int(p) for p in _this_month(ctx).split("-"))
    out = []
    for _ in range(MONTHS_OFFERED):
        out.append(f"{year:04d}-{mon:02d}")
        year, mon = (year - 1, 12) if mon == 1 else (year, mon - 1)
    return out


def _profiles(ctx: PortalContext, scope: str):
    """The billing profiles of the statement: this one, or its provider's that this user may see."""
    if scope != "provider":
        return [ctx.profile.billing]
    provider = ctx.profile.billing.provider
    return [p.billing for name, p in sorted(ctx.config.profiles.items())
            if p.billing.provider == provider and ctx.user.may_see(name)]


def statement_for(ctx: PortalContext, month: str, scope: str = "profile"):
    """A Deferred firing with the :class:`Statement` of ``month``, each profile's in its own zone (as
    ``prepaid statement`` makes it)."""
    profiles = _profiles(ctx, scope)
    title = ctx.profile.billing.provider if scope == "provider" else ctx.profile.name
    return ctx.store.run(build_statement, profiles, month, title=title)


def _choice(ctx: PortalContext) -> tuple[str, str]:
    month = ctx.query.get("month", "")
    if not _MONTH.match(month):
        month = _this_month(ctx)
    scope = "provider" if ctx.query.get("scope") == "provider" else "profile"
    return month, scope


def _figures(ctx: PortalContext, st: Statement):
    paid = [m for m in st.topups if m.method in ("paypal", "klarna", "paysafecard")]
    others = [m for m in st.topups if m not in paid]
    own = tags.table(
        tags.caption(ctx.t("statements_paid_caption")),
        tags.thead(tags.tr(tags.th(ctx.t("statements_method"), scope="col"), tags.th(ctx.t("statements_count"), scope="col"),
                           tags.th(ctx.t("statements_amount"), scope="col"))),
        tags.tbody(*(tags.tr(tags.td(_METHOD_NAMES.get(m.method, m.method)), tags.td(str(m.count), class_="num"),
                             tags.td(ctx.money(m.amount_cents), class_="num")) for m in paid),
                   tags.tr(tags.th(ctx.t("statements_paid_total"), scope="row"),
                           tags.td(str(st.total("paid_topup_count")), class_="num"),
                           tags.td(ctx.money(st.total("paid_topup_cents")), class_="num"))),
        class_="data statement-paid")
    fees = tags.table(
        tags.caption(ctx.t("statements_fees_caption")),
        tags.tbody(*(tags.tr(tags.th(ctx.t(f"statements_line_{name}"), scope="row"),
                             tags.td(ctx.money(st.total(name)), class_="num")) for name in FEE_LINES)),
        class_="data statement-fees")
    moves = [(ctx.t("statements_topup_manual") if m.method == "manual" else ctx.t("statements_topup_other",
                                                                                  method=m.method),
              ctx.money(m.amount_cents)) for m in others]
    moves.append((ctx.t("statements_billed_minutes"), f"{st.total('billed_s') // 60}:{st.total('billed_s') % 60:02d}"))
    moves += [(ctx.t(f"statements_line_{name}"), ctx.money(st.total(name))) for _label, name in LINES
              if name not in FEE_LINES and name != "paid_topup_cents"]
    ledger = tags.table(
        tags.caption(ctx.t("statements_ledger_caption")),
        tags.tbody(*(tags.tr(tags.th(label, scope="row"), tags.td(value, class_="num")) for label, value in moves)),
        class_="data statement-ledger")
    check = tags.p(ctx.t("statements_reconciles" if st.reconciles else "statements_not_reconciled"))
    return [tags.p(ctx.t("statements_for", title=st.title, month=st.month,
                         profiles=", ".join(p.profile for p in st.parts))), own, fees, ledger, check]


_METHOD_NAMES = {"paypal": "PayPal", "klarna": "Klarna", "paysafecard": "paysafecard"}


async def page(ctx: PortalContext) -> Html:
    """The month picker, the statement and the links to its CSV and printable page."""
    month, scope = _choice(ctx)
    st = await statement_for(ctx, month, scope)
    picker = tags.form(
        tags.label(ctx.t("statements_month"), tags.select(
            *(tags.option(m, value=m, **({"selected": "selected"} if m == month else {})) for m in _months(ctx)),
            name="month")),
        tags.label(ctx.t("statements_scope"), tags.select(
            tags.option(ctx.t("statements_scope_profile"), value="profile"),
            tags.option(ctx.t("statements_scope_provider"), value="provider",
                        **({"selected": "selected"} if scope == "provider" else {})), name="scope")),
        tags.button(ctx.t("statements_show"), type="submit"),
        class_="form", method="get", action=ctx.url("statements"))
    links = tags.p(tags.a(ctx.t("statements_csv"), href=ctx.url("statements.csv", month=month, scope=scope)), " · ",
                   tags.a(ctx.t("statements_print"), href=ctx.url("statements/print", month=month, scope=scope)))
    return Html(ctx.t("statements_title"), [picker, links] + _figures(ctx, st))


async def print_page(ctx: PortalContext) -> Html:
    """The statement alone, in a ``print`` block the portal's stylesheet lays out for paper."""
    month, scope = _choice(ctx)
    st = await statement_for(ctx, month, scope)
    return Html(ctx.t("statements_print_title", title=st.title, month=month),
                tags.div(*_figures(ctx, st), class_="print statement"))


async def csv_page(ctx: PortalContext) -> Csv:
    """The settlement's CSV (``billing.settlement.to_csv``), amounts with the user's decimal mark."""
    month, scope = _choice(ctx)
    st = await statement_for(ctx, month, scope)
    rows = list(csv.reader(io.StringIO(to_csv(st))))
    if ctx.lang == "de":
        rows = [["Monat", "Profil", "Position", "Anzahl", "Betrag"]] + \
               [row[:4] + [row[4].replace(".", ",")] for row in rows[1:]]
    return Csv(f"statement-{st.title}-{month}.csv", rows)


ROUTES = [Route("statements", page, nav="statements_nav"), Route("statements.csv", csv_page),
          Route("statements/print", print_page)]

_LINE_TEXTS = {
    "bonus_cents": ("Gewährte Boni", "Bonuses granted"),
    "call_debit_cents": ("Anrufe belastet", "Call debits"),
    "call_refund_cents": ("Anrufe erstattet", "Call refunds"),
    "call_revenue_cents": ("Anrufumsatz", "Call revenue"),
    "manual_credit_cents": ("Manuelle Gutschriften", "Manual credits"),
    "manual_debit_cents": ("Manuelle Belastungen", "Manual debits"),
    "api_credit_cents": ("API-Gutschriften", "API credits"),
    "api_debit_cents": ("API-Belastungen", "API debits"),
    "correction_cents": ("Korrekturen", "Corrections"),
    "reversal_cents": ("Rückbuchungen (vom Guthaben genommen)", "Reversals taken from balances"),
    "shortfall_cents": ("Rückbuchungen (nicht gedeckt)", "Reversals not covered (shortfall)"),
    "fee_topup_percent_cents": ("Gebühr: Prozent der bezahlten Aufladungen", "Fee: percent of paid top-ups"),
    "fee_per_transaction_cents": ("Gebühr: je bezahlter Aufladung", "Fee: per paid top-up"),
    "fee_per_minute_cents": ("Gebühr: Plattform je abgerechneter Minute", "Fee: platform per billed minute"),
    "fees_cents": ("Gebühren an den Betreiber gesamt", "Fees owed to the operator, total"),
    "net_payout_cents": ("Bezahlte Aufladungen abzüglich Rückbuchungen und Gebühren",
                         "Paid top-ups less reversals and fees"),
}

STRINGS = {
    "de": {
        "statements_nav": "Abrechnung",
        "statements_title": "Abrechnung",
        "statements_print_title": "Abrechnung {title} {month}",
        "statements_month": "Monat",
        "statements_scope": "Für",
        "statements_scope_profile": "dieses Profil",
        "statements_scope_provider": "alle Profile des Anbieters",
        "statements_show": "Anzeigen",
        "statements_csv": "Als CSV herunterladen",
        "statements_print": "Druckansicht",
        "statements_for": "{title}, {month} (Profile: {profiles}); Monatsgrenzen in der Zeitzone des Profils.",
        "statements_paid_caption": "Aufladungen, eingegangen auf Ihren eigenen Händlerkonten",
        "statements_paid_total": "Bezahlte Aufladungen gesamt",
        "statements_method": "Zahlungsart",
        "statements_count": "Anzahl",
        "statements_amount": "Betrag",
        "statements_fees_caption": "Gebühren, die Sie dem Betreiber schulden",
        "statements_ledger_caption": "Bewegungen der Guthaben im Monat",
        "statements_topup_manual": "Manuelle Aufladungen",
        "statements_topup_other": "Aufladungen über {method}",
        "statements_billed_minutes": "Abgerechnete Minuten (m:ss)",
        "statements_reconciles": "Stimmt mit dem Buchungsjournal überein.",
        "statements_not_reconciled": "ACHTUNG: stimmt nicht mit dem Buchungsjournal überein.",
        **{f"statements_line_{k}": de for k, (de, _en) in _LINE_TEXTS.items()},
    },
    "en": {
        "statements_nav": "Statements",
        "statements_title": "Statements",
        "statements_print_title": "Statement {title} {month}",
        "statements_month": "Month",
        "statements_scope": "For",
        "statements_scope_profile": "this profile",
        "statements_scope_provider": "all the provider's profiles",
        "statements_show": "Show",
        "statements_csv": "Download as CSV",
        "statements_print": "Printable page",
        "statements_for": "{title}, {month} (profiles: {profiles}); month bounds in the profile's time zone.",
        "statements_paid_caption": "Top-ups received on your own merchant accounts",
        "statements_paid_total": "Paid top-ups, total",
        "statements_method": "Method",
        "statements_count": "Count",
        "statements_amount": "Amount",
        "statements_fees_caption": "Fees you owe the operator",
        "statements_ledger_caption": "Balance movements in the month",
        "statements_topup_manual": "Manual top-ups",
        "statements_topup_other": "Top-ups by {method}",
        "statements_billed_minutes": "Billed minutes (m:ss)",
        "statements_reconciles": "Reconciles with the ledger.",
        "statements_not_reconciled": "WARNING: does not reconcile with the ledger.",
        **{f"statements_line_{k}": en for k, (_de, en) in _LINE_TEXTS.items()},
    },
}
