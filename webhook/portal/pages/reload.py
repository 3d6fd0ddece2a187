"""The portal's "Reload config" (operators only): what SIGHUP does, from a button, with its result shown.

``GET /reload`` shows when the config in force was loaded and the button; ``POST /reload`` (CSRF-checked
by the server) re-reads the config file and the secrets file, writes an audit row (actor
``portal:<user>``, action ``config_reload``, from the client's address, the outcome in ``detail``) and
shows the result: applied (and the restart-only settings that changed and were not applied) or refused
with every problem as ``file:key: reason``, and the load time of the config in force now. Providers get
the portal's 404 for both. The node gives the reload and the load time (:func:`routes_for`): ``webhook/``
does not know the node.
"""

from __future__ import annotations

from typing import Callable, Protocol

from twisted.web.template import tags

from billing.db import audit

from ..view import Html, PortalContext, Route

ACTION = "config_reload"

STRINGS = {
    "de": {
        "reload.nav": "Konfiguration neu laden", "reload.title": "Konfiguration neu laden",
        "reload.loaded": "Konfiguration geladen: {when}",
        "reload.explain": "Liest die Konfigurationsdatei und die Secrets-Datei neu, wie SIGHUP. Tarife, Profile, "
                          "Seiten, Zahlungsarten und Zugangsdaten gelten sofort; Adressen, Ports, TLS-Dateien und "
                          "der Speicher erst nach einem Neustart.",
        "reload.button": "Konfiguration neu laden",
        "reload.applied": "Die neue Konfiguration ist in Kraft.",
        "reload.refused": "Die Konfiguration wurde nicht geladen; die bisherige bleibt in Kraft:",
        "reload.not_applied": "Geändert, aber erst nach einem Neustart wirksam:",
    },
    "en": {
        "reload.nav": "Reload config", "reload.title": "Reload config",
        "reload.loaded": "Config loaded: {when}",
        "reload.explain": "Reads the config file and the secrets file again, as SIGHUP does. Tariffs, profiles, "
                          "pages, payment methods and credentials apply at once; addresses, ports, TLS files and "
                          "the store only after a restart.",
        "reload.button": "Reload config",
        "reload.applied": "The new config is in force.",
        "reload.refused": "The config was not loaded; the one before stays in force:",
        "reload.not_applied": "Changed, but applied only after a restart:",
    },
}


class ReloadOutcome(Protocol):
    """What a reload answers (the node's ``b2bua.node.reload.ReloadResult``)."""

    applied: bool
    loaded_ms: int
    problems: tuple[str, ...]
    not_applied: tuple[str, ...]


def _form(ctx: PortalContext, loaded_ms: int) -> list:
    return [tags.p(ctx.t("reload.loaded", when=ctx.when(loaded_ms)), id="loaded"),
            tags.p(ctx.t("reload.explain")),
            tags.form(tags.input(type="hidden", name="csrf", value=ctx.csrf_token),
                      tags.button(ctx.t("reload.button"), type="submit", id="reload"),
                      method="post", action="/reload", **{"class": "form"})]


def _result(ctx: PortalContext, outcome: ReloadOutcome) -> list:
    if not outcome.applied:
        return [tags.p(ctx.t("reload.refused"), **{"class": "error", "id": "result"}),
                tags.ul(*[tags.li(tags.code(p)) for p in outcome.problems], id="problems")]
    out = [tags.p(ctx.t("reload.applied"), **{"class": "notice", "id": "result"})]
    if outcome.not_applied:
        out += [tags.p(ctx.t("reload.not_applied")),
                tags.ul(*[tags.li(tags.code(k)) for k in outcome.not_applied], id="not-applied")]
    return out


def _detail(outcome: ReloadOutcome) -> str:
    if not outcome.applied:
        return "refused: " + "; ".join(outcome.problems)
    return "applied" + ("; not applied until a restart: " + ", ".join(outcome.not_applied)
                        if outcome.not_applied else "")


def routes_for(reload: Callable[[], ReloadOutcome], loaded_ms: Callable[[], int]) -> list[Route]:
    """The page's routes, bound to the node's ``reload`` and the load time of the config in force."""

    async def page(ctx: PortalContext) -> Html:
        """GET: when the config in force was loaded, and the button. POST: reload now, audit it, and show
        the outcome with the load time in force after it."""
        if ctx.method != "POST":
            return Html(ctx.t("reload.title"), _form(ctx, loaded_ms()))
        outcome = reload()
        await ctx.store.run(audit.add, audit.AuditEntry(at_ms=ctx.now_ms, actor=f"portal:{ctx.user.name}",
                                                        action=ACTION, source=ctx.client_address,
                                                        detail=_detail(outcome)[:1000]))
        return Html(ctx.t("reload.title"), _result(ctx, outcome) + _form(ctx, loaded_ms()),
                    status=200 if outcome.applied else 422)

    return [Route("reload", page, methods=("GET", "POST"), nav="reload.nav", operator_only=True,
                  profile_scoped=False)]


#: no routes of its own: the node binds them with :func:`routes_for`
ROUTES: list[Route] = []
