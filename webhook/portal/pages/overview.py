"""The portal's overview of one billing profile: today and this month at a glance, and the last 30 days
as a chart drawn on the server (inline SVG: no script, readable on a 390 px phone).

Days and months are the profile's (``ctx.timezone``): a day is midnight to midnight there.
"""

from __future__ import annotations

import datetime
import zoneinfo

from twisted.web.template import Tag, tags

from ..view import Html, PortalContext, Route

#: days in the chart, today included
CHART_DAYS = 30
#: the chart's drawing box (viewBox units; the SVG scales to the page's width)
CHART_W, CHART_H = 360, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 34, 8, 22, 30

STRINGS = {
    "de": {
        "overview.nav": "Übersicht",
        "overview.title": "Übersicht",
        "overview.today": "Heute",
        "overview.month": "Dieser Monat",
        "overview.calls": "Anrufe",
        "overview.minutes": "Abgerechnete Minuten",
        "overview.topups": "Aufladungen",
        "overview.topup_money": "Aufgeladen",
        "overview.with_credit": "Konten mit Guthaben",
        "overview.credit": "Guthaben gesamt",
        "overview.chart": "Anrufe und Aufladungen pro Tag, letzte 30 Tage",
        "overview.day": "Tag",
        "overview.count": "Anzahl",
    },
    "en": {
        "overview.nav": "Overview",
        "overview.title": "Overview",
        "overview.today": "Today",
        "overview.month": "This month",
        "overview.calls": "Calls",
        "overview.minutes": "Billed minutes",
        "overview.topups": "Top-ups",
        "overview.topup_money": "Topped up",
        "overview.with_credit": "Accounts with credit",
        "overview.credit": "Credit in all",
        "overview.chart": "Calls and top-ups per day, last 30 days",
        "overview.day": "Day",
        "overview.count": "Count",
    },
}

_CALLS_COLOUR, _TOPUPS_COLOUR = "#2b6cb0", "#d69e2e"


def _ms(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1000)


def spans(now_ms: int, timezone: str, days: int = CHART_DAYS) -> tuple[int, int, tuple[int, ...]]:
    """(start of today, start of this month, the ``days + 1`` boundaries of the last ``days`` days up to
    tomorrow's midnight), in milliseconds, cut at midnight in ``timezone``."""
    zone = zoneinfo.ZoneInfo(timezone)
    today = datetime.datetime.fromtimestamp(now_ms / 1000, zone).date()

    def midnight(day: datetime.date) -> int:
        return _ms(datetime.datetime(day.year, day.month, day.day, tzinfo=zone))
    first = today - datetime.timedelta(days=days - 1)
    bounds = tuple(midnight(first + datetime.timedelta(days=i)) for i in range(days + 1))
    return midnight(today), midnight(today.replace(day=1)), bounds


def minutes(billed_s: int) -> str:
    """Billed seconds as minutes and seconds (``12:05``)."""
    return f"{billed_s // 60}:{billed_s % 60:02d}"


def _svg(name: str, **attrs) -> Tag:
    return Tag(name, attributes={k.replace("_", "-"): str(v) for k, v in attrs.items()})


def chart(ctx: PortalContext, days) -> Tag:
    """Bars of calls and of top-ups per day, side by side, with a labelled count axis and date axis."""
    zone = zoneinfo.ZoneInfo(ctx.timezone)
    top = max([1] + [d.calls for d in days] + [d.topups for d in days])
    plot_w, plot_h = CHART_W - _LEFT - _RIGHT, CHART_H - _TOP - _BOTTOM
    slot = plot_w / max(1, len(days))
    bar = max(1.0, slot / 2 - 0.5)
    base_y = _TOP + plot_h
    parts: list = [_svg("title")(ctx.t("overview.chart"))]
    for value in sorted({0, top // 2, top}):                     # the count axis: 0, half and the top
        y = base_y - plot_h * value / top
        parts += [_svg("line", x1=_LEFT, x2=CHART_W - _RIGHT, y1=f"{y:.1f}", y2=f"{y:.1f}", stroke="#ccc"),
                  _svg("text", x=_LEFT - 4, y=f"{y + 3:.1f}", text_anchor="end", font_size=10)(str(value))]
    for i, day in enumerate(days):
        x = _LEFT + i * slot
        label = datetime.datetime.fromtimestamp(day.start_ms / 1000, zone).strftime("%d.%m.")
        for value, colour, dx, what in ((day.calls, _CALLS_COLOUR, 0, "overview.calls"),
                                        (day.topups, _TOPUPS_COLOUR, bar, "overview.topups")):
            h = plot_h * value / top
            parts.append(_svg("rect", x=f"{x + dx:.1f}", y=f"{base_y - h:.1f}", width=f"{bar:.1f}",
                              height=f"{h:.1f}", fill=colour)(_svg("title")(f"{label} {ctx.t(what)}: {value}")))
        if i % 7 == (len(days) - 1) % 7:                          # a date every week, ending today
            parts.append(_svg("text", x=f"{x + slot / 2:.1f}", y=CHART_H - _BOTTOM + 14, text_anchor="middle",
                              font_size=10)(label))
    parts += [_svg("text", x=_LEFT, y=12, font_size=10)(ctx.t("overview.count")),
              _svg("text", x=CHART_W - _RIGHT, y=CHART_H - 2, text_anchor="end", font_size=10)(ctx.t("overview.day")),
              _svg("rect", x=_LEFT + 40, y=4, width=10, height=10, fill=_CALLS_COLOUR),
              _svg("text", x=_LEFT + 54, y=13, font_size=10)(ctx.t("overview.calls")),
              _svg("rect", x=_LEFT + 130, y=4, width=10, height=10, fill=_TOPUPS_COLOUR),
              _svg("text", x=_LEFT + 144, y=13, font_size=10)(ctx.t("overview.topups"))]
    return _svg("svg", xmlns="http://www.w3.org/2000/svg", viewBox=f"0 0 {CHART_W} {CHART_H}", width="100%",
                role="img", aria_label=ctx.t("overview.chart"), **{"class": "chart"})(*parts)


def _table(ctx: PortalContext, ov) -> Tag:
    rows = [("overview.calls", str(ov.today.calls), str(ov.month.calls)),
            ("overview.minutes", minutes(ov.today.billed_s), minutes(ov.month.billed_s)),
            ("overview.topups", str(ov.today.topups), str(ov.month.topups)),
            ("overview.topup_money", ctx.money(ov.today.topup_cents), ctx.money(ov.month.topup_cents))]
    return tags.table(class_="data")(
        tags.thead(tags.tr(tags.th(""), tags.th(ctx.t("overview.today")), tags.th(ctx.t("overview.month")))),
        tags.tbody(*[tags.tr(tags.th(ctx.t(key), scope="row"), tags.td(a), tags.td(b)) for key, a, b in rows]))


async def overview(ctx: PortalContext) -> Html:
    """The overview of ``ctx.profile``."""
    today_ms, month_ms, bounds = spans(ctx.now_ms, ctx.timezone)
    ov = await ctx.store.overview(ctx.profile.name, now_ms=ctx.now_ms, today_ms=today_ms, month_ms=month_ms,
                                  day_bounds_ms=bounds)
    return Html(ctx.t("overview.title"), [
        _table(ctx, ov),
        tags.dl(tags.dt(ctx.t("overview.with_credit")), tags.dd(str(ov.accounts_with_credit)),
                tags.dt(ctx.t("overview.credit")), tags.dd(ctx.money(ov.credit_cents))),
        tags.figure(chart(ctx, ov.days), tags.figcaption(ctx.t("overview.chart"))),
    ])


ROUTES = [Route("", overview, nav="overview.nav")]
