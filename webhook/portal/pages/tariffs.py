"""The portal's "Tariffs and settings": what the profile's config says, as in force on this node now.

Read-only: tariffs (landline, mobile, the first-caller tariff and its period), increments, when charging
starts, the warning, top-up amounts and their bonuses, service numbers and agents, and when the config
was last loaded. Operators change these in the config file and reload; the page reads ``ctx.config``
at each request, so it shows a reload at once.
"""

from __future__ import annotations

from decimal import Decimal

from twisted.web.template import tags

from ..view import Html, PortalContext, Route

STRINGS = {
    "de": {
        "tariffs.nav": "Tarife und Einstellungen", "tariffs.title": "Tarife und Einstellungen",
        "tariffs.loaded": "Konfiguration geladen: {when}", "tariffs.tariffs": "Tarife",
        "tariffs.landline": "Festnetz", "tariffs.mobile": "Mobilfunk", "tariffs.per_minute": "{amount} pro Minute",
        "tariffs.first_caller": "Erstanrufer", "tariffs.first_caller_value": "{amount} pro Minute, die ersten {period}",
        "tariffs.none": "—", "tariffs.connect": "Verbindungsentgelt", "tariffs.increment": "Takt",
        "tariffs.increment_value": "{first} s, dann je {next} s", "tariffs.charging": "Abrechnung beginnt",
        "tariffs.charging.after_announcement": "nach der Tarifansage", "tariffs.charging.answer": "wenn der Berater annimmt",
        "tariffs.charging.answer+10": "10 s nach Annahme", "tariffs.charging.answer+20": "20 s nach Annahme",
        "tariffs.charging.answer+30": "30 s nach Annahme", "tariffs.warning": "Warnung",
        "tariffs.warning_value": "{seconds} s vor Ende des Guthabens", "tariffs.topups": "Aufladebeträge",
        "tariffs.amount": "Betrag", "tariffs.bonus": "Bonus", "tariffs.routing": "Rufnummern und Berater",
        "tariffs.service_numbers": "Servicerufnummern", "tariffs.agents": "Berater",
        "tariffs.hunting": "Reihenfolge", "tariffs.hunting.order": "der Reihe nach",
        "tariffs.hunting.round_robin": "reihum", "tariffs.ring_timeout": "Klingeldauer je Berater",
        "tariffs.seconds": "{seconds} s", "tariffs.minutes": "{minutes} min",
    },
    "en": {
        "tariffs.nav": "Tariffs and settings", "tariffs.title": "Tariffs and settings",
        "tariffs.loaded": "Config loaded: {when}", "tariffs.tariffs": "Tariffs",
        "tariffs.landline": "Landline", "tariffs.mobile": "Mobile", "tariffs.per_minute": "{amount} a minute",
        "tariffs.first_caller": "First callers", "tariffs.first_caller_value": "{amount} a minute for the first {period}",
        "tariffs.none": "—", "tariffs.connect": "Connection charge", "tariffs.increment": "Increments",
        "tariffs.increment_value": "{first} s, then every {next} s", "tariffs.charging": "Charging starts",
        "tariffs.charging.after_announcement": "after the tariff announcement",
        "tariffs.charging.answer": "when the agent answers",
        "tariffs.charging.answer+10": "10 s after the answer", "tariffs.charging.answer+20": "20 s after the answer",
        "tariffs.charging.answer+30": "30 s after the answer", "tariffs.warning": "Warning",
        "tariffs.warning_value": "{seconds} s before the credit ends", "tariffs.topups": "Top-up amounts",
        "tariffs.amount": "Amount", "tariffs.bonus": "Bonus", "tariffs.routing": "Numbers and agents",
        "tariffs.service_numbers": "Service numbers", "tariffs.agents": "Agents",
        "tariffs.hunting": "Order", "tariffs.hunting.order": "in order",
        "tariffs.hunting.round_robin": "round robin", "tariffs.ring_timeout": "Ringing per agent",
        "tariffs.seconds": "{seconds} s", "tariffs.minutes": "{minutes} min",
    },
}


def rate(ctx: PortalContext, per_minute: Decimal) -> str:
    """An exact tariff in the currency, as the user's language writes it (at least two decimals, never rounded)."""
    exponent = per_minute.as_tuple().exponent
    places = max(2, -exponent if isinstance(exponent, int) else 2)
    text = f"{per_minute:.{places}f}"
    return f"{text.replace('.', ',')} €" if ctx.lang == "de" else f"€{text}"


def _period(ctx: PortalContext, seconds: int) -> str:
    if seconds % 60 == 0:
        return ctx.t("tariffs.minutes", minutes=seconds // 60)
    return ctx.t("tariffs.seconds", seconds=seconds)


def _facts(rows) -> object:
    """A two-column table of (label, value)."""
    return tags.table(tags.tbody(*[tags.tr(tags.th(label), tags.td(value)) for label, value in rows]),
                      **{"class": "data"})


def tariffs_page(ctx: PortalContext) -> Html:
    """GET: the profile's tariffs and settings in force."""
    profile, money = ctx.profile, ctx.profile.billing
    first = money.first_caller
    loaded_ms = ctx.config_loaded_ms          # "—" while the server does not know it
    tariffs = _facts([
        (ctx.t("tariffs.landline"), ctx.t("tariffs.per_minute", amount=rate(ctx, money.landline_per_minute))),
        (ctx.t("tariffs.mobile"), ctx.t("tariffs.per_minute", amount=rate(ctx, money.mobile_per_minute))),
        (ctx.t("tariffs.first_caller"),
         ctx.t("tariffs.first_caller_value", amount=rate(ctx, first.per_minute), period=_period(ctx, first.period_s))
         if first is not None else ctx.t("tariffs.none")),
        (ctx.t("tariffs.connect"), ctx.money(money.connect_charge_cents)),
        (ctx.t("tariffs.increment"), ctx.t("tariffs.increment_value", first=money.increment.first_s,
                                           next=money.increment.next_s)),
        (ctx.t("tariffs.charging"), ctx.t(f"tariffs.charging.{money.charging_starts.value}")),
        (ctx.t("tariffs.warning"), ctx.t("tariffs.warning_value", seconds=money.warn_before_s)),
    ])
    topups = tags.table(
        tags.thead(tags.tr(tags.th(ctx.t("tariffs.amount")), tags.th(ctx.t("tariffs.bonus")))),
        tags.tbody(*[tags.tr(tags.td(ctx.money(o.amount_cents)), tags.td(ctx.money(o.bonus_cents)))
                     for o in money.topups]),
        **{"class": "data"})
    routing = _facts([
        (ctx.t("tariffs.service_numbers"), tags.ul(*[tags.li(n) for n in profile.service_numbers])),
        (ctx.t("tariffs.agents"), tags.ol(*[tags.li(a) for a in profile.agents])),
        (ctx.t("tariffs.hunting"), ctx.t(f"tariffs.hunting.{profile.hunting}")),
        (ctx.t("tariffs.ring_timeout"), ctx.t("tariffs.seconds", seconds=profile.ring_timeout_s)),
    ])
    return Html(ctx.t("tariffs.title"), [
        tags.p(ctx.t("tariffs.loaded", when=ctx.when(loaded_ms) if loaded_ms is not None else ctx.t("tariffs.none"))),
        tags.h2(ctx.t("tariffs.tariffs")), tariffs,
        tags.h2(ctx.t("tariffs.topups")), topups,
        tags.h2(ctx.t("tariffs.routing")), routing,
    ])


ROUTES = [Route("tariffs", tariffs_page, nav="tariffs.nav")]
