"""The portal's audit log: who changed what, when and from where; read-only (no form here changes a row).

On a profile (``/p/<profile>/audit``) the rows of that profile; for operators also ``/audit``: every row,
also those of no profile (portal logins and users). Filters by action and by date (``from``/``to``,
inclusive days in the profile's zone), newest first, 50 a page.
"""

from __future__ import annotations

import datetime
import zoneinfo

from twisted.web.template import Tag, tags

from ..view import Html, PortalContext, Route
from . import listing

STRINGS = {
    "de": {
        "audit.nav": "Audit",
        "audit.nav_all": "Audit (alle)",
        "audit.title": "Audit",
        "audit.title_all": "Audit aller Profile",
        "audit.when": "Wann",
        "audit.who": "Wer",
        "audit.from_where": "Von wo",
        "audit.profile": "Profil",
        "audit.action": "Aktion",
        "audit.subject": "Betrifft",
        "audit.detail": "Einzelheiten",
        "audit.before": "Vorher",
        "audit.after": "Nachher",
        "audit.any_action": "alle",
        "audit.since": "Von (Tag)",
        "audit.until": "Bis (Tag)",
        "audit.filter": "Filtern",
        "audit.none": "Keine Einträge.",
    },
    "en": {
        "audit.nav": "Audit",
        "audit.nav_all": "Audit (all)",
        "audit.title": "Audit log",
        "audit.title_all": "Audit log of all profiles",
        "audit.when": "When",
        "audit.who": "Who",
        "audit.from_where": "From where",
        "audit.profile": "Profile",
        "audit.action": "Action",
        "audit.subject": "Subject",
        "audit.detail": "Detail",
        "audit.before": "Before",
        "audit.after": "After",
        "audit.any_action": "any",
        "audit.since": "From (day)",
        "audit.until": "To (day)",
        "audit.filter": "Filter",
        "audit.none": "No entries.",
    },
}
for _lang, _texts in listing.STRINGS.items():
    STRINGS[_lang].update(_texts)


def day_ms(text: str, timezone: str, *, after: bool = False) -> int | None:
    """The midnight that starts the day ``text`` (YYYY-MM-DD) in ``timezone`` (with ``after``: the one that
    ends it); None for no date."""
    try:
        day = datetime.date.fromisoformat(text.strip())
    except ValueError:
        return None
    if after:
        day += datetime.timedelta(days=1)
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=zoneinfo.ZoneInfo(timezone)).timestamp() * 1000)


def _filters(ctx: PortalContext, actions, action: str, since: str, until: str) -> Tag:
    return tags.form(class_="form", method="get", action=ctx.url("audit"))(
        tags.label(ctx.t("audit.action"), for_="audit-action"),
        tags.select(id="audit-action", name="action")(
            tags.option(ctx.t("audit.any_action"), value=""),
            *[tags.option(a, value=a, **({"selected": "selected"} if a == action else {})) for a in actions]),
        tags.label(ctx.t("audit.since"), for_="audit-since"),
        tags.input(type="date", id="audit-since", name="from", value=since),
        tags.label(ctx.t("audit.until"), for_="audit-until"),
        tags.input(type="date", id="audit-until", name="to", value=until),
        tags.button(ctx.t("audit.filter"), type="submit"))


async def _log(ctx: PortalContext, profile: str | None, title: str) -> Html:
    action = ctx.query.get("action", "")[:64]
    since, until = ctx.query.get("from", "")[:10], ctx.query.get("to", "")[:10]
    page = listing.page_number(ctx)
    actions = await ctx.store.audit_actions(profile)
    result = await ctx.store.audit_page(profile=profile, action=action or None,
                                        since_ms=day_ms(since, ctx.timezone),
                                        until_ms=day_ms(until, ctx.timezone, after=True),
                                        offset=(page - 1) * listing.PER_PAGE, limit=listing.PER_PAGE)
    columns = ["audit.when", "audit.who", "audit.from_where"] + (["audit.profile"] if profile is None else []) + [
        "audit.action", "audit.subject", "audit.detail", "audit.before", "audit.after"]
    rows = [tags.tr(tags.td(ctx.when(e.at_ms)), tags.td(e.actor), tags.td(e.source),
                    *([tags.td(e.profile)] if profile is None else []),
                    tags.td(e.action), tags.td(e.subject), tags.td(e.detail), tags.td(e.before), tags.td(e.after))
            for e in result.entries]
    body: list = [_filters(ctx, actions, action, since, until)]
    if rows:
        body.append(tags.table(class_="data")(
            tags.thead(tags.tr(*[tags.th(ctx.t(c), scope="col") for c in columns])), tags.tbody(*rows)))
    else:
        body.append(tags.p(ctx.t("audit.none")))
    body.append(listing.pager(ctx, "audit", page, result.total, action=action, **{"from": since, "to": until}))
    return Html(title, body)


async def profile_log(ctx: PortalContext) -> Html:
    """The audit rows of ``ctx.profile``."""
    return await _log(ctx, ctx.profile.name, ctx.t("audit.title"))


async def operator_log(ctx: PortalContext) -> Html:
    """Every audit row, also those of no profile (operators only)."""
    return await _log(ctx, None, ctx.t("audit.title_all"))


ROUTES = [Route("audit", profile_log, nav="audit.nav"),
          Route("audit", operator_log, nav="audit.nav_all", operator_only=True, profile_scoped=False)]
